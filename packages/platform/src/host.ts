import { isIPv4, isIPv6 } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Whether a Host header names this server in a way no other web site can take over: an IP address
 * (v4, or v6 in brackets), `localhost` or a name under `.localhost` (which browsers keep on
 * loopback). A page on evil.example whose name is rebound to 127.0.0.1 is the same origin as this
 * server to the browser, so neither CORS nor Sec-Fetch-Site stops its scripts; but their requests
 * still say `Host: evil.example`. No browser sends a request without a Host header.
 */
export function unrebindableHost(host: string | undefined): boolean {
  if (host === undefined) return true;
  const name = host.toLowerCase();
  const v6 = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(name);
  if (v6) return isIPv6(v6[1] ?? '');
  const bare = /^([^:]+)(?::\d{1,5})?$/.exec(name)?.[1];
  return bare !== undefined && (isIPv4(bare) || bare === 'localhost' || bare.endsWith('.localhost'));
}

/**
 * Whether a host (a name, or an address, IPv6 without brackets) is this machine's loopback:
 * `localhost`, 127.0.0.0/8 or ::1. Only addresses count, not a name that happens to start with
 * 127 (`127.0.0.1.example.com` may be anywhere).
 */
export function isLoopbackHost(host: string): boolean {
  const name = host.toLowerCase();
  return name === 'localhost' || name === '::1' || (isIPv4(name) && name.startsWith('127.'));
}

/**
 * With authentication off anyone who can send a request has full access, and DNS rebinding lets
 * any web page its visitors open send one: answers 421 to a request that names this server by
 * another name, and says whether it did.
 */
export function refuseRebindableHost(req: IncomingMessage, res: ServerResponse): boolean {
  if (unrebindableHost(req.headers.host)) return false;
  res.writeHead(421, { 'content-type': 'application/json; charset=utf-8' });
  res.end(
    JSON.stringify({
      errors: [
        {
          message: `authentication is off, so this server answers only requests addressed to localhost or an IP address, not to ${JSON.stringify(req.headers.host)} (any web page could rebind that name to it); use http://localhost:<port>/, or set AUTH_JWT_SECRET`,
          extensions: { code: 'FORBIDDEN' },
        },
      ],
    }),
  );
  return true;
}
