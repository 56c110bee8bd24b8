/**
 * A list of URLs, split at the commas that begin another URL (`,amqp://...`): a password may hold
 * a comma of its own.
 */
export const splitUrlList = (value: string): string[] => value.split(/,(?=\s*[a-z][a-z0-9+.-]*:\/\/)/i).map((u) => u.trim());

/** A URL (or a comma-separated list) fit for logs and error messages: scheme, host, port and path, never credentials. */
export function safeUrl(url: string): string {
  const urls = splitUrlList(url);
  if (urls.length > 1) return urls.map(safeUrl).join(',');
  try {
    const u = new URL(url);
    // An @ after the host: a password with an unencoded / ? or # ended the host early, so what
    // parsed as host, port and path holds part of it.
    if ((u.pathname + u.search + u.hash).includes('@')) return `${u.protocol}//(a URL whose password is not URL-encoded)`;
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return '(unparseable URL)';
  }
}
