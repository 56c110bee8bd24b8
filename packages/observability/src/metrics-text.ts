/* Reading a Prometheus text exposition (what /metrics serves): the dashboard's and the tests'. */

/** The samples of one metric in a Prometheus text exposition, by label set. */
export function metricSamples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    const match = /^[^{\s]+(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const m of (match[1] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1] as string] = m[2] as string;
    out.push({ labels, value: Number(match[2]) });
  }
  return out;
}

/** The sum of one metric's samples whose labels include `labels`, in a Prometheus text exposition. */
export const metricSum = (text: string, name: string, labels: Record<string, string> = {}): number =>
  metricSamples(text, name)
    .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((total, s) => total + s.value, 0);
