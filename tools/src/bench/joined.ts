import { performance } from 'node:perf_hooks';
import { graphqlClient } from '@stockflow/client';
import { httpPipe, OPEN_CONNECTION, summarize, type Summary } from '@stockflow/loadgen';
import { EVEN, load } from './load.ts';
import { cpuMeter, perOrder } from './meters.ts';
import type { Platform } from './platforms.ts';

/** Connections opened one after another during the joined reads, each timed to its first answer. */
const NEW_CONNECTIONS = 3;

/** An order with its lines' products: the lines from the Order Service, the products from the Inventory Service. */
const JOINED_QUERY = 'query($id: ID!) { order(id: $id) { id status items { productId quantity product { name availableStock } } } }';

export interface JoinedResult {
  requests: number;
  /** Distinct orders asked for, round-robin. */
  orders: number;
  seconds: number;
  requestsPerSecond: number;
  /** Each request's round trip as the load generator saw it, over the connections opened before the clock started. */
  latencyMs: Summary;
  /**
   * The first answer on a connection opened a third of the way in (once a third of the requests
   * are sent), while the gateway is at full CPU: the slowest of NEW_CONNECTIONS, one after
   * another. What a client new to a saturated gateway waits, its accept included: the kept-alive
   * connections' latency leaves that out (docs/performance.md, History, "the joined reads' stalls").
   */
  newConnectionMs: number;
  /** Answers that were not an order with every line's product, by error code. */
  errors: Record<string, number>;
  ok: boolean;
  /** CPU ms by kind of process per request, the gateway's included. */
  cpuPerRequest: Record<string, number>;
}

/** Ids of up to `count` existing orders, oldest first (read from the Order Service, not measured). */
async function existingOrders(platform: Platform, count: number): Promise<string[]> {
  const orders = graphqlClient(platform.ordersUrl, { token: platform.token });
  const ids: string[] = [];
  let after: string | null = null;
  while (ids.length < count) {
    const page: { orders: { nodes: { id: string }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } } = await orders.data(
      'query($after: String) { orders(first: 500, after: $after) { nodes { id } pageInfo { hasNextPage endCursor } } }',
      { after },
    );
    ids.push(...page.orders.nodes.map((o) => o.id));
    if (!page.orders.pageInfo.hasNextPage) break;
    after = page.orders.pageInfo.endCursor;
  }
  return ids.slice(0, count);
}

/**
 * `requests` queries through the gateway for existing orders with their lines' products, which
 * the gateway plans over both services (the order from one, the products from the other through
 * `_entities`), `concurrency` in flight over kept-alive connections, as the load scenarios send
 * theirs. Every answer must hold the order and each line's product.
 */
export async function joined(platform: Platform, requests: number, concurrency = 200): Promise<JoinedResult | undefined> {
  const gatewayUrl = platform.fronts?.gateway;
  if (!gatewayUrl) return undefined;
  let ids = await existingOrders(platform, 1_000);
  if (ids.length === 0) {
    // Without a warm-up nothing has been ordered yet: some orders to ask for, not measured.
    await load(platform, { ...EVEN, orders: 1_000, audit: false });
    ids = await existingOrders(platform, 1_000);
  }
  const pipe = httpPipe(gatewayUrl, concurrency, platform.token);
  // Every connection accepted before the clock starts (httpPipe's open says why).
  try {
    await pipe.open(OPEN_CONNECTION);
  } catch (error) {
    pipe.close();
    throw error;
  }
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  const fail = (code: string) => (errors[code] = (errors[code] ?? 0) + 1);
  let next = 0;
  const cpuSince = await cpuMeter(platform, 'gateway');
  const start = performance.now();
  let newConnectionMs = 0;
  const newConnections = async () => {
    while (next < requests / 3) await new Promise((r) => setTimeout(r, 10));
    for (let i = 0; i < NEW_CONNECTIONS; i += 1) {
      const fresh = httpPipe(gatewayUrl, 1, platform.token);
      const sent = performance.now();
      try {
        const res = await fresh.post(JSON.stringify({ query: JOINED_QUERY, variables: { id: ids[i % ids.length] } }));
        if (res.status !== 200) fail(`NEW_CONNECTION_HTTP_${res.status}`);
        newConnectionMs = Math.max(newConnectionMs, performance.now() - sent);
      } catch (error) {
        fail(`NEW_CONNECTION_${(error as { code?: string }).code ?? 'NETWORK'}`);
      } finally {
        fresh.close();
      }
    }
  };
  await Promise.all([
    newConnections(),
    ...Array.from({ length: concurrency }, async () => {
      while (next < requests) {
        const id = ids[next % ids.length] as string;
        next += 1;
        const sent = performance.now();
        try {
          const res = await pipe.post(JSON.stringify({ query: JOINED_QUERY, variables: { id } }));
          latencies.push(performance.now() - sent);
          type Answer = {
            data?: { order: { items: { product: { name: string } | null }[] } | null };
            errors?: { extensions?: { code?: string } }[];
          };
          let body: Answer = {};
          try {
            body = JSON.parse(res.body) as Answer;
          } catch {
            /* counted below by its HTTP status */
          }
          const order = body.data?.order;
          if (body.errors?.length || !order)
            fail(String(body.errors?.[0]?.extensions?.code ?? (order === null ? 'NO_ORDER' : `HTTP ${res.status}`)));
          else if (order.items.length === 0 || order.items.some((l) => typeof l.product?.name !== 'string')) fail('LINE_WITHOUT_PRODUCT');
        } catch (error) {
          fail((error as { code?: string }).code ?? 'NETWORK');
        }
      }
    }),
  ]);
  const seconds = (performance.now() - start) / 1_000;
  const cpu = await cpuSince();
  pipe.close();
  return {
    requests,
    orders: ids.length,
    seconds,
    requestsPerSecond: requests / seconds,
    latencyMs: summarize(latencies),
    newConnectionMs,
    errors,
    ok: Object.keys(errors).length === 0,
    cpuPerRequest: perOrder(cpu, requests),
  };
}
