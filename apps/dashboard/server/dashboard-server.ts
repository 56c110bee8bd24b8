/**
 * The operations dashboard's server: the built page, the gateway's one graph behind the same
 * origin (so the browser needs no CORS and subscriptions stream through), a status summary read
 * from the services' and the gateway's /ready and the services' /metrics (in full to an admin,
 * with authentication on: see answerStatus), and the Black-Friday
 * rehearsal (the load generator, which drives the services directly) run on request. The embedded
 * `npm start` runs it beside the services; `npm run start:dashboard` runs it alone in front of a
 * distributed platform.
 *
 * What changes state here follows the GraphQL APIs' rules: with authentication on, the gateway
 * and the services judge the proxied requests by their token and the rehearsal needs an admin's; with it off,
 * anyone who reaches the port has full access, so only the dashboard's own page is answered (no
 * other site's page may drive it from a visitor's browser), and only at localhost or an IP address
 * (no other site's name may be rebound to it).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { getOperationAST, OperationTypeNode, parse } from 'graphql';
import { z } from 'zod';
import { QUEUES } from '@stockflow/contracts';
import {
  createDrainingServer,
  markSubscription,
  may,
  refuseRebindableHost,
  UnauthenticatedError,
  type Access,
  type Authenticator,
} from '@stockflow/platform';
import { metricSamples, metricSum, type Logger } from '@stockflow/observability';
import { isJsonContentType, readLimitedBody, refuseTooLargeBody } from '@stockflow/graphql';
import { runLoad, type LoadReport, type Progress } from '@stockflow/loadgen';

export interface DashboardOptions {
  port: number;
  /** Loopback unless said otherwise. */
  host?: string;
  /** Verifies bearer tokens as the services do (the same settings). */
  auth: Authenticator;
  /** Where the gateway and the services listen, e.g. http://127.0.0.1:8001 (without /graphql). */
  gatewayUrl: string;
  ordersUrl: string;
  inventoryUrl: string;
  logger: Logger;
  /** The built page; by default the one `npm run build` made. */
  assetsDir?: string;
}

export interface RunningDashboard {
  port: number;
  /** The address it is bound to, e.g. 127.0.0.1. */
  address: string;
  /**
   * Stops listening and resolves once the requests under way are answered (the subscription
   * streams it passes on are cut); when `giveUp` aborts, what is still open is cut.
   */
  close(giveUp?: AbortSignal): Promise<void>;
}

/** The built page: beside the bundle in a build (dist/<runnable>/dashboard), else Vite's output. */
export function dashboardAssets(): string {
  const bundled = path.join(import.meta.dirname, 'dashboard');
  return existsSync(bundled) ? bundled : path.join(import.meta.dirname, '..', 'dist');
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

const RehearsalRequest = z.object({
  orders: z.number().int().min(1).max(20_000).default(500),
  rate: z.number().int().min(1).max(5_000).default(100),
});

/**
 * Whether a browser sent the request from this dashboard's own page. Browsers say which site a
 * request comes from (Sec-Fetch-Site, or only Origin in older ones) and no page can forge either;
 * a request with neither comes from no browser, so from no other site's page.
 */
function fromOwnPage(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined) return site === 'same-origin';
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

/** Whether a GraphQL request (a POST's JSON body, else a GET's query string) asks for a subscription. */
function isSubscription(body: Buffer | undefined, url: URL): boolean {
  try {
    const { query, operationName } = body
      ? (JSON.parse(body.toString('utf8')) as { query?: unknown; operationName?: unknown })
      : { query: url.searchParams.get('query'), operationName: url.searchParams.get('operationName') };
    if (typeof query !== 'string') return false;
    return (
      getOperationAST(parse(query), typeof operationName === 'string' ? operationName : undefined)?.operation ===
      OperationTypeNode.SUBSCRIPTION
    );
  } catch {
    // Not a request the gateway will take: it answers it, and the answer ends.
    return false;
  }
}

/** The page is on this origin: no other site's page is let read an answer, whatever a service would allow. */
const withoutCors = (headers: IncomingHttpHeaders) =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => !name.startsWith('access-control-')));

/** A part's readiness as its /ready says, or why it could not be read. */
interface Readiness {
  ready: boolean;
  checks: Record<string, string> | null;
  auth?: string;
  error?: string;
}

interface Rehearsal {
  startedAt: string;
  progress: Progress | null;
  report:
    | (Pick<LoadReport, 'accepted' | 'failed' | 'acceptedPerSecond' | 'completedPerSecond' | 'latencyMs' | 'outcomes' | 'ok'> & {
        stuck: number;
        audit: 'passed' | 'failed' | 'skipped';
      })
    | null;
  error: string | null;
}

export async function startDashboard(options: DashboardOptions): Promise<RunningDashboard> {
  const { logger } = options;
  const assets = options.assetsDir ?? dashboardAssets();
  const upstream = {
    gateway: new URL('/graphql', options.gatewayUrl),
    orders: new URL('/graphql', options.ordersUrl),
    inventory: new URL('/graphql', options.inventoryUrl),
  };
  let rehearsal: (Rehearsal & { running: boolean }) | null = null;

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };

  /**
   * Passes the request to the gateway's /graphql, its query string included, and streams the
   * answer back (SSE included). A subscription's stream never ends by itself: it is marked so that
   * the dashboard's own shutdown cuts it (the page reconnects), while a query or mutation, even
   * over SSE, is answered first.
   */
  const proxy = async (req: IncomingMessage, res: ServerResponse) => {
    const target = upstream.gateway;
    let body: Buffer | undefined;
    if (req.method === 'POST') {
      const read = await readLimitedBody(req);
      if (read === null) return refuseTooLargeBody(req, res);
      body = read;
    }
    const url = new URL(target);
    url.search = new URL(req.url ?? '/', 'http://dashboard').search;
    if ((req.headers.accept ?? '').includes('text/event-stream') && isSubscription(body, url)) markSubscription(req);
    const headers = { ...req.headers, host: target.host, ...(body ? { 'content-length': String(body.length) } : {}) };
    delete headers['transfer-encoding'];
    const upstreamRequest = httpRequest(url, { method: req.method, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, withoutCors(answer.headers));
      answer.pipe(res);
      // Cut short upstream (a subscription the gateway closed as it stopped): cut short here too.
      answer.once('close', () => {
        if (!answer.complete) res.destroy();
      });
    });
    upstreamRequest.on('error', (error) => {
      if (!res.headersSent)
        json(res, 502, { errors: [{ message: `gateway unreachable: ${error.message}`, extensions: { code: 'UNAVAILABLE' } }] });
      else res.destroy();
    });
    res.on('close', () => upstreamRequest.destroy());
    upstreamRequest.end(body);
  };

  const fetchText = async (url: URL) => {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return { status: res.status, text: await res.text() };
  };

  /** A part's /ready: whether it is ready, its checks, and whether it checks tokens. */
  const readiness = async (base: URL): Promise<Readiness> => {
    const ready = await fetchText(new URL('/ready', base));
    const body = JSON.parse(ready.text) as { checks: Record<string, string>; auth?: string };
    return { ready: ready.status === 200, checks: body.checks, auth: body.auth };
  };
  const unreachable = (error: unknown): Readiness => ({ ready: false, checks: null, error: (error as Error).message });
  /** What the page is shown of a part's readiness. */
  const shown = ({ ready, checks, error }: Readiness) => ({ ready, checks, ...(error ? { error } : {}) });

  const status = async () => {
    const gatewayStatus = readiness(upstream.gateway).catch(unreachable);
    const services = await Promise.all(
      (['orders', 'inventory'] as const).map(async (name) => {
        try {
          const [ready, metrics] = await Promise.all([readiness(upstream[name]), fetchText(new URL('/metrics', upstream[name]))]);
          return { name, ...ready, metrics: metrics.text };
        } catch (error) {
          return { name, ...unreachable(error), metrics: '' };
        }
      }),
    );
    const [orders, inventory] = services as [(typeof services)[number], (typeof services)[number]];
    /** A per-queue gauge of both services, by queue. */
    const byQueue = (metric: string) =>
      Object.fromEntries(
        [...metricSamples(orders.metrics, metric), ...metricSamples(inventory.metrics, metric)].map((s): [string, number] => [
          s.labels.queue ?? '',
          s.value,
        ]),
      );
    return {
      at: Date.now(),
      auth: orders.auth === 'jwt' || inventory.auth === 'jwt' ? 'jwt' : 'disabled',
      services: services.map((service) => ({ name: service.name, ...shown(service) })),
      gateway: shown(await gatewayStatus),
      outbox: {
        orders: metricSum(orders.metrics, 'stockflow_outbox_backlog'),
        inventory: metricSum(inventory.metrics, 'stockflow_outbox_backlog'),
      },
      // Each queue by one service: the one consuming it; the payment service's refund requests by the Order Service, which feeds them.
      queues: byQueue('stockflow_queue_messages_ready'),
      // Where the refunds asked for wait until the payment service takes them (in the embedded mode, none does).
      refundQueue: QUEUES.refundRequestsPayments,
      deadLetters: byQueue('stockflow_dead_letter_messages'),
      decisions: {
        reserved: metricSum(inventory.metrics, 'stockflow_reservation_decisions_total', { outcome: 'reserved' }),
        rejected: metricSum(inventory.metrics, 'stockflow_reservation_decisions_total', { outcome: 'rejected' }),
      },
    };
  };

  const readBody = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > 10_000) throw new Error('request body too large');
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
  };

  /** Who the request acts as by its token (authentication on), or why its token is refused. */
  const accessOf = async (req: IncomingMessage): Promise<Access | UnauthenticatedError> => {
    try {
      return await options.auth.authenticate(req.headers.authorization);
    } catch (error) {
      if (error instanceof UnauthenticatedError) return error;
      throw error;
    }
  };

  /**
   * The status summary. In full (each part's checks and why it could not be read, the outbox
   * backlog, dead letters by queue, the reservation decisions) with authentication off or to a
   * token that may operate the platform. To anyone else, only whether each part is ready and
   * whether tokens are checked, which the page needs before it signs in: the services answer
   * /ready and /metrics without a token, but to whoever reaches their ports, usually an internal
   * network, and the dashboard may be reached from further away. A token that is not valid is
   * refused (401), as everywhere.
   */
  const answerStatus = async (req: IncomingMessage, res: ServerResponse) => {
    let full = options.auth.mode === 'disabled';
    if (!full && req.headers.authorization !== undefined) {
      const access = await accessOf(req);
      if (access instanceof UnauthenticatedError) return json(res, 401, { error: access.message });
      full = may(access, 'operate');
    }
    const summary = await status();
    if (full) return json(res, 200, summary);
    json(res, 200, {
      at: summary.at,
      auth: summary.auth,
      services: summary.services.map(({ name, ready }) => ({ name, ready })),
      gateway: { ready: summary.gateway.ready },
    });
  };

  /** Why a rehearsal may not be started by this request, if it may not: the GraphQL APIs' rules, and a JSON body. */
  const rehearsalRefusal = async (req: IncomingMessage): Promise<{ status: number; error: string } | undefined> => {
    if (options.auth.mode === 'jwt') {
      const access = await accessOf(req);
      if (access instanceof UnauthenticatedError) return { status: 401, error: access.message };
      if (!may(access, 'operate')) return { status: 403, error: 'only an admin may start a rehearsal' };
    } else if (!fromOwnPage(req)) {
      return { status: 403, error: "authentication is off: only the dashboard's own page may start a rehearsal" };
    }
    if (!isJsonContentType(req.headers['content-type']))
      return { status: 415, error: 'the body must be JSON (content-type: application/json)' };
    return undefined;
  };

  const startRehearsal = async (req: IncomingMessage, res: ServerResponse) => {
    const refusal = await rehearsalRefusal(req);
    if (refusal) return json(res, refusal.status, { error: refusal.error });
    if (rehearsal?.running) return json(res, 409, { error: 'a rehearsal is already running' });
    let params: z.infer<typeof RehearsalRequest>;
    try {
      const text = await readBody(req);
      const parsed = RehearsalRequest.safeParse(text ? JSON.parse(text) : {});
      if (!parsed.success) return json(res, 400, { error: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') });
      params = parsed.data;
    } catch {
      return json(res, 400, { error: 'the body must be JSON: {"orders": 500, "rate": 100}' });
    }
    const token = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const current: Rehearsal & { running: boolean } = {
      running: true,
      startedAt: new Date().toISOString(),
      progress: null,
      report: null,
      error: null,
    };
    rehearsal = current;
    logger.info({ orders: params.orders, rate: params.rate }, 'Black-Friday rehearsal started from the dashboard');
    runLoad(
      {
        ordersUrl: upstream.orders.toString(),
        inventoryUrl: upstream.inventory.toString(),
        orders: params.orders,
        rate: params.rate,
        concurrency: 200,
        products: 50,
        hot: 3,
        hotShare: 0.5,
        stock: 1_000_000,
        hotStock: 50,
        settleTimeoutMs: 120_000,
        audit: true,
        token,
      },
      (p) => {
        current.progress = p;
      },
    ).then(
      (report) => {
        current.report = {
          accepted: report.accepted,
          failed: report.failed,
          acceptedPerSecond: report.acceptedPerSecond,
          completedPerSecond: report.completedPerSecond,
          latencyMs: report.latencyMs,
          outcomes: report.outcomes,
          stuck: report.stuck.length,
          audit: report.audit ? (report.audit.ok ? 'passed' : 'failed') : 'skipped',
          ok: report.ok,
        };
        current.running = false;
      },
      (error: unknown) => {
        current.error = error instanceof Error ? error.message : String(error);
        current.running = false;
      },
    );
    json(res, 202, { started: true });
  };

  const serveAsset = async (res: ServerResponse, urlPath: string) => {
    const relative = urlPath === '/' ? 'index.html' : decodeURIComponent(urlPath).replace(/^\/+/, '');
    const file = path.resolve(assets, relative);
    if (!file.startsWith(path.resolve(assets) + path.sep)) return json(res, 404, { error: 'not found' });
    try {
      const body = await readFile(file);
      res.writeHead(200, {
        'content-type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream',
        'cache-control': relative.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
      });
      res.end(body);
    } catch {
      if (relative === 'index.html') return json(res, 503, { error: 'the dashboard is not built: run npm run build' });
      json(res, 404, { error: 'not found' });
    }
  };

  const drainable = createDrainingServer((req, res) => {
    // Without authentication, Sec-Fetch-Site and Origin say same-origin for a page whose name is rebound to this address.
    if (options.auth.mode === 'disabled' && refuseRebindableHost(req, res)) return;
    const urlPath = (req.url ?? '/').split('?')[0] ?? '/';
    const handled = (async () => {
      if (urlPath === '/api/graphql') {
        // With authentication off a request needs nothing but to arrive; a token is what no other site's page has.
        if (options.auth.mode === 'disabled' && req.method !== 'GET' && req.method !== 'HEAD' && !fromOwnPage(req))
          return json(res, 403, {
            errors: [
              { message: "authentication is off: only the dashboard's own page may use its APIs", extensions: { code: 'FORBIDDEN' } },
            ],
          });
        return proxy(req, res);
      }
      if (urlPath === '/api/status' && req.method === 'GET') return answerStatus(req, res);
      if (urlPath === '/api/rehearsal' && req.method === 'POST') return startRehearsal(req, res);
      if (urlPath === '/api/rehearsal' && req.method === 'GET') return json(res, 200, rehearsal ?? { running: false });
      if (urlPath.startsWith('/api/')) return json(res, 404, { error: 'not found' });
      if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: 'method not allowed' });
      return serveAsset(res, urlPath);
    })();
    handled.catch((error: unknown) => {
      logger.error({ err: error }, 'dashboard request failed');
      if (!res.headersSent) json(res, 500, { error: 'unexpected error' });
    });
  });
  const { server } = drainable;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port, address } = server.address() as AddressInfo;
  return { port, address, close: (giveUp) => drainable.close(giveUp) };
}
