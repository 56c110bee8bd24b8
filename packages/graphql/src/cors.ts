import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * CORS for an origin on the allow-list (set before any answer, so errors are readable too);
 * nothing for any other, so the browser keeps that page from the answer and from sending
 * anything a preflight guards. The responder returns true when the request was a preflight, now
 * answered. The services' and the gateway's, so one page is let in by both alike.
 */
export function corsResponder(origins: readonly string[]): (req: IncomingMessage, res: ServerResponse) => boolean {
  const allowList = new Set(origins);
  return (req, res) => {
    const origin = req.headers.origin;
    const allowed = origin !== undefined && allowList.has(origin);
    if (allowList.size > 0) res.setHeader('vary', 'Origin');
    if (allowed) res.setHeader('access-control-allow-origin', origin);
    if (req.method !== 'OPTIONS') return false;
    const requested = req.headers['access-control-request-headers'];
    res.writeHead(
      204,
      allowed
        ? {
            'access-control-allow-methods': 'GET, POST',
            ...(requested ? { 'access-control-allow-headers': requested } : {}),
            'access-control-max-age': '600',
          }
        : {},
    );
    res.end();
    return true;
  };
}
