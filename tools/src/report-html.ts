import type { LoadReport } from '@stockflow/loadgen';

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);

/** A line chart as inline SVG: no script, no network, opens anywhere. */
function lineChart(title: string, unit: string, series: { name: string; color: string; points: number[] }[]): string {
  const width = 720;
  const height = 240;
  const pad = { left: 56, right: 16, top: 28, bottom: 32 };
  const n = Math.max(1, ...series.map((s) => s.points.length));
  const max = Math.max(1, ...series.flatMap((s) => s.points.filter(Number.isFinite)));
  const x = (i: number) => pad.left + (i / Math.max(1, n - 1)) * (width - pad.left - pad.right);
  const y = (v: number) => height - pad.bottom - (v / max) * (height - pad.top - pad.bottom);
  const paths = series
    .map((s) => {
      const d = s.points
        .map((v, i) => (Number.isFinite(v) ? `${x(i).toFixed(1)},${y(v).toFixed(1)}` : null))
        .filter(Boolean)
        .join(' L ');
      return d ? `<path d="M ${d}" fill="none" stroke="${s.color}" stroke-width="2"><title>${escape(s.name)}</title></path>` : '';
    })
    .join('');
  const ticks = [0, 0.25, 0.5, 0.75, 1]
    .map((f) => `<text x="${pad.left - 6}" y="${y(max * f) + 4}" text-anchor="end" font-size="11">${Math.round(max * f)}</text>`)
    .join('');
  const legend = series
    .map((s, i) => `<text x="${pad.left + i * 150}" y="16" font-size="12" fill="${s.color}">■ ${escape(s.name)}</text>`)
    .join('');
  return `<figure><figcaption>${escape(title)} (${escape(unit)}, per second of the run)</figcaption>
<svg viewBox="0 0 ${width} ${height}" role="img" aria-label="${escape(title)}" width="100%">
<rect x="0" y="0" width="${width}" height="${height}" fill="#fff"/>${legend}${ticks}
<line x1="${pad.left}" y1="${height - pad.bottom}" x2="${width - pad.right}" y2="${height - pad.bottom}" stroke="#999"/>
<text x="${width - pad.right}" y="${height - 8}" text-anchor="end" font-size="11">${n} s</text>${paths}</svg></figure>`;
}

export function renderHtmlReport(report: LoadReport): string {
  const row = (k: string, v: string | number) => `<tr><th>${escape(k)}</th><td>${escape(String(v))}</td></tr>`;
  const ms = (v: number) => (Number.isFinite(v) ? `${Math.round(v)} ms` : 'n/a');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Stockflow load test ${escape(report.runId)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:780px;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}th,td{padding:.25rem .75rem;text-align:left;border-bottom:1px solid #ddd}
th{font-weight:600}.ok{color:#1a7f37}.bad{color:#cf222e}figure{margin:1.5rem 0}figcaption{font-weight:600;margin-bottom:.5rem}</style></head>
<body><h1>Load test ${escape(report.runId)} <span class="${report.ok ? 'ok' : 'bad'}">${report.ok ? 'passed' : 'FAILED'}</span></h1>
<p>Started ${escape(report.startedAt)}; ${report.options.orders} orders, ${report.options.rate ? `${report.options.rate}/s` : `concurrency ${report.options.concurrency}`},
${report.options.products} products (${report.options.hot} hot, ${Math.round(report.options.hotShare * 100)}% of orders).</p>
<table>${row('accepted', `${report.accepted} of ${report.sent} (${report.failed} failed)`)}
${row('accepted/s', report.acceptedPerSecond.toFixed(0))}${row('completed/s', report.completedPerSecond.toFixed(0))}
${row('latency p50 / p95 / p99 / max', `${ms(report.latencyMs.p50)} / ${ms(report.latencyMs.p95)} / ${ms(report.latencyMs.p99)} / ${ms(report.latencyMs.max)}`)}
${row('confirmed / paid / cancelled', `${report.outcomes.CONFIRMED} / ${report.outcomes.PAID} / ${report.outcomes.CANCELLED}`)}
${row('payments', report.payments.share > 0 ? `${report.payments.paid} paid of ${report.payments.confirmed} confirmed, after ${report.payments.afterMs} ms` : 'none sent')}
${row('expired (not paid in time)', report.payments.expired)}
${row('stuck (still PENDING)', report.stuck.length)}
${row('audit', report.audit ? (report.audit.ok ? 'passed' : report.audit.problems.join('; ')) : 'skipped')}</table>
${lineChart('Throughput', 'orders', [
  { name: 'accepted', color: '#0969da', points: report.timeline.map((t) => t.accepted) },
  { name: 'completed', color: '#1a7f37', points: report.timeline.map((t) => t.completed) },
])}
${lineChart('Latency, creation to final status', 'ms', [
  { name: 'p50', color: '#0969da', points: report.timeline.map((t) => t.p50) },
  { name: 'p99', color: '#cf222e', points: report.timeline.map((t) => t.p99) },
])}
</body></html>
`;
}
