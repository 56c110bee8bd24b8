import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { refuseRebindableHost } from './host.ts';

export interface ReadinessCheck {
  name: string;
  check(): Promise<boolean> | boolean;
  /**
   * Reported but not required: the instance can still do its work without it, so it stays in its
   * load balancer while this one is down (the body says `degraded`).
   */
  optional?: boolean;
}

export interface HttpServerOptions {
  port: number;
  host?: string;
  /** Everything that is not /health or /ready (the GraphQL server). */
  handler(req: IncomingMessage, res: ServerResponse): void;
  checks: ReadinessCheck[];
  /** Served at /metrics in the Prometheus text format. */
  metrics?: Registry;
  /** Facts added to every /ready answer. */
  info?: Record<string, string>;
  /** Answer only requests addressed to localhost or an IP address, /health excepted (authentication off: see refuseRebindableHost). */
  refuseRebindableHosts?: boolean;
  /** Served at /asyncapi.json: the event contract, for other teams to read or generate clients from. */
  asyncApi?: object;
  /** Whether the instance is ready, given which checks are up; by default, while every required check is. */
  ready?: (up: Readonly<Record<string, boolean>>) => boolean;
}

export interface RunningHttpServer extends DrainingServer {
  port: number;
}

function sendJson(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const subscriptions = new WeakSet<IncomingMessage>();
/** The responses under way on a server that is closing, by request. */
const draining = new WeakMap<IncomingMessage, ServerResponse>();

/**
 * Marks a request as a subscription: its answer is a stream that ends only when its client
 * leaves, so a shutdown closes it rather than wait for it (the client reconnects elsewhere).
 */
export function markSubscription(req: IncomingMessage): void {
  subscriptions.add(req);
  // Found to be one only after its server began to close.
  draining.get(req)?.destroy();
}

export interface DrainingServer {
  server: Server;
  /**
   * Stops listening and resolves once the requests under way are answered; when `giveUp` aborts,
   * the connections still open are cut.
   */
  close(giveUp?: AbortSignal): Promise<void>;
}

/**
 * The header of a draining server's 503: the request was refused before anything was done, so a
 * client (the gateway) may send it to another instance.
 */
export const DRAINING_HEADER = 'stockflow-draining';

/**
 * An HTTP server that stops gracefully. Once `close` is called a request still arriving on an open
 * connection is refused (503, `Connection: close`) before `handler` sees it; those under way
 * finish and their responses close their connections; subscriptions (`markSubscription`) are
 * closed at once.
 */
export function createDrainingServer(handler: RequestListener): DrainingServer {
  let closing = false;
  const inFlight = new Map<ServerResponse, IncomingMessage>();
  const server = createServer((req, res) => {
    if (closing) {
      // Refused before anything is done, so the client can safely send it to another instance.
      res.writeHead(503, { 'content-type': 'application/json', connection: 'close', 'retry-after': '1', [DRAINING_HEADER]: 'true' });
      res.end(JSON.stringify({ status: 'shutting down' }));
      return;
    }
    inFlight.set(res, req);
    res.once('close', () => {
      inFlight.delete(res);
      // Node keeps a connection alive after its last response even once the server is closing.
      if (closing) server.closeIdleConnections();
    });
    handler(req, res);
  });
  return {
    server,
    close: (giveUp) =>
      new Promise<void>((resolve) => {
        closing = true;
        const cut = () => server.closeAllConnections();
        // Stops listening and closes the idle connections; resolves once no connection is left.
        server.close(() => {
          giveUp?.removeEventListener('abort', cut);
          resolve();
        });
        for (const [res, req] of inFlight) {
          if (subscriptions.has(req)) {
            res.destroy();
            continue;
          }
          draining.set(req, res);
          if (!res.headersSent) res.setHeader('connection', 'close');
        }
        if (giveUp?.aborted) cut();
        else giveUp?.addEventListener('abort', cut, { once: true });
      }),
  };
}

/**
 * `/health` answers while the process is alive (a liveness probe: restarting would not help with
 * anything else); `/ready` answers 200 while every required dependency answers, so a load balancer
 * stops sending traffic to an instance that cannot do its work, and 503 otherwise.
 */
export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const asyncApi = options.asyncApi && JSON.stringify(options.asyncApi);
  const drainable = createDrainingServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/health') return sendJson(res, 200, { status: 'ok' });
    if (options.refuseRebindableHosts && refuseRebindableHost(req, res)) return;
    if (url === '/metrics' && options.metrics) {
      const registry = options.metrics;
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        () => sendJson(res, 500, { status: 'metrics unavailable' }),
      );
      return;
    }
    if (url === '/asyncapi.json' && asyncApi) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(asyncApi);
      return;
    }
    if (url === '/ready') {
      void Promise.all(options.checks.map(async (c) => [c.name, await Promise.resolve(c.check()).catch(() => false)] as const)).then(
        (results) => {
          const checks = Object.fromEntries(results.map(([name, ok]) => [name, ok ? 'up' : 'down']));
          const ready = options.ready
            ? options.ready(Object.fromEntries(results))
            : results.every(([, ok], i) => ok || options.checks[i]?.optional);
          const degraded = ready && results.some(([, ok]) => !ok);
          sendJson(res, ready ? 200 : 503, { status: ready ? (degraded ? 'degraded' : 'ready') : 'not ready', checks, ...options.info });
        },
      );
      return;
    }
    options.handler(req, res);
  });
  const { server } = drainable;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  return { ...drainable, port: (server.address() as AddressInfo).port };
}
