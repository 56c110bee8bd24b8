import pg from 'pg';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { metricSum } from '@stockflow/observability';
import {
  createTestDatabase,
  eventually,
  sseSubscribe,
  startServiceProcess,
  type ServiceProcess,
  type TestDatabase,
} from '@stockflow/testing';
import { notifyPayloads, ORDER_STATUS_CHANNEL, type StatusChange } from '../src/db/status-changes.ts';
import { MAX_PENDING_CHANGES } from '../src/graphql/status-feed.ts';

const servicesUnavailable = inject('servicesUnavailable');

interface SsePayload {
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/**
 * What an SSE response sends until it ends, or until `timeoutMs` pass: each `next` payload, and
 * whether a `complete` came.
 */
async function readAll(res: Response, timeoutMs = 30_000): Promise<{ payloads: SsePayload[]; completed: boolean }> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const deadline = Date.now() + timeoutMs;
  let text = '';
  for (;;) {
    const step = await Promise.race([
      reader.read(),
      new Promise<'late'>((r) => setTimeout(() => r('late'), Math.max(0, deadline - Date.now()))),
    ]);
    if (step === 'late') {
      await reader.cancel();
      break;
    }
    if (step.done) break;
    text += step.value;
  }
  const payloads: SsePayload[] = [];
  let completed = false;
  // Only whole events: one cut by the deadline is left out.
  for (const block of text.split('\n\n').slice(0, -1)) {
    const lines = block.split('\n');
    if (lines.includes('event: complete')) completed = true;
    const data = lines
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).trim())
      .join('');
    if (data) payloads.push(JSON.parse(data) as SsePayload);
  }
  return { payloads, completed };
}

/**
 * The Order Service as its own process, so that an exception nothing catches shows as what it is
 * in production: the process ending, with every subscriber and request on it.
 */
describe.skipIf(servicesUnavailable)('Order Service subscribers that fall behind', { timeout: 180_000 }, () => {
  let db: TestDatabase;
  let orders: ServiceProcess;
  let url: string;

  beforeEach(async () => {
    db = await createTestDatabase('orders_subscribers');
    orders = await startServiceProcess('orders', {
      DATABASE_URL: db.url,
      AMQP_URL: inject('amqpUrl'),
      PORT: '0',
      HOST: '127.0.0.1',
      AUTH_DISABLED: 'true',
      CREATE_ORDER_RATE_LIMIT: '0',
      // No payment-hold sweep: nothing but the subscriptions reads orders behind the tests' backs.
      PAYMENT_HOLD_SECONDS: '0',
    });
    url = `http://127.0.0.1:${orders.port}/graphql`;
  });
  afterEach(async () => {
    await orders.stop('SIGKILL');
    await db.drop();
  });

  const alive = () => orders.child.exitCode === null && orders.child.signalCode === null;
  const died = () => `the Order Service exited (${orders.child.exitCode ?? orders.child.signalCode}):\n${orders.output().slice(-3_000)}`;

  /** A GraphQL request's data; a refused connection is reported with how the process ended, if it did. */
  const gql = async <T>(query: string, variables: Record<string, unknown> = {}): Promise<T> => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables }),
    }).catch(async (error: unknown) => {
      // A refused connection may come just before the process's exit is seen.
      await new Promise((r) => setTimeout(r, 1_000));
      throw new Error(alive() ? `request failed: ${String(error)}` : died());
    });
    const body = (await res.json()) as { data?: T; errors?: unknown[] };
    if (!body.data || body.errors) throw new Error(`request refused: ${JSON.stringify(body.errors)}`);
    return body.data;
  };
  /** Creates an order (PENDING: no Inventory Service runs, so it stays so) with `lines` lines; its id. */
  const createOrder = async (customerId: string, lines = 1): Promise<string> =>
    (
      await gql<{ createOrder: { id: string } }>('mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }', {
        input: { customerId, items: Array.from({ length: lines }, (_, i) => ({ productId: String(i + 1), quantity: 1 })) },
      })
    ).createOrder.id;
  /** `count` orders created by `workers` clients at once, as a busy shop would; their ids. */
  const createOrders = async (count: number, customerId: string, lines = 1, workers = 8): Promise<string[]> => {
    const ids: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: workers }, async () => {
        while (next < count) {
          next += 1;
          ids.push(await createOrder(customerId, lines));
        }
      }),
    );
    return ids;
  };
  /** A subscription over SSE whose client reads nothing (until the test reads it all). */
  const stalledSubscriber = async (query: string, variables: Record<string, unknown> = {}) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query, variables }),
    });
    expect(res.status).toBe(200);
    return res;
  };
  const tooSlowCount = async (subscription: string) =>
    metricSum(await (await fetch(`http://127.0.0.1:${orders.port}/metrics`)).text(), 'stockflow_subscribers_too_slow_total', {
      subscription,
    });

  it('ends a stalled subscriber with SUBSCRIBER_TOO_SLOW once it falls too far behind, while the process and every other subscriber go on', async () => {
    // Each event about 100 kB (19 copies of 100 lines), so that the stalled client's socket is
    // full (a few MB on loopback) after some tens of them: from then on the service cannot send,
    // and what follows waits in the service for that subscriber.
    const lines = Array.from({ length: 19 }, (_, i) => `l${i}: items { productId quantity unitPriceCents }`).join(' ');
    const stalled = await stalledSubscriber(`subscription { orderStatusChanges { id ${lines} } }`);
    const everyOrder = await sseSubscribe<{ orderStatusChanges: { id: string } }>(url, 'subscription { orderStatusChanges { id } }');
    const bobs = await sseSubscribe<{ customerOrderStatusChanged: { id: string; status: string } }>(
      url,
      'subscription { customerOrderStatusChanged(customerId: "bob") { id status } }',
    );

    const created = [...(await createOrders(60, 'alice', 100)), ...(await createOrders(MAX_PENDING_CHANGES + 200, 'alice'))];
    expect(alive(), died()).toBe(true);
    // The subscribers that read get every change, during and after.
    const bobsOrder = await createOrder('bob');
    await bobs.waitFor((events) => events.some((e) => e.customerOrderStatusChanged.id === bobsOrder));
    await everyOrder.waitFor((events) => events.length === created.length + 1, 30_000);
    expect(new Set(everyOrder.events.map((e) => e.orderStatusChanges.id))).toEqual(new Set([...created, bobsOrder]));
    expect(everyOrder.errors).toEqual([]);
    everyOrder.close();
    bobs.close();

    // The stalled one reads at last: what had reached its socket, then the error, then the end.
    const { payloads, completed } = await readAll(stalled);
    const last = payloads.at(-1);
    expect(last?.errors?.[0]?.extensions?.code).toBe('SUBSCRIBER_TOO_SLOW');
    expect(last?.errors?.[0]?.message).toMatch(/subscribe again/);
    expect(payloads.slice(0, -1).every((p) => p.errors === undefined)).toBe(true);
    expect(payloads.length).toBeLessThan(created.length);
    expect(completed).toBe(true);
    expect(await tooSlowCount('orderStatusChanges')).toBe(1);
    const warnings = orders.output().match(/subscriber too slow/g) ?? [];
    expect(warnings).toHaveLength(1);
    expect(alive(), died()).toBe(true);
  });

  it('keeps orderStatusChanged on one order going however many other orders change while it is busy', async () => {
    const followed = await createOrder('carol');
    const follower = await sseSubscribe<{ orderStatusChanged: { id: string; status: string } }>(
      url,
      'subscription($id: ID!) { orderStatusChanged(id: $id) { id status } }',
      { id: followed },
    );
    await follower.waitFor((events) => events.length === 1);

    // The stream is made to wait on its reading of the order (the table locked, as a database
    // that answers slowly would) while more changes than a subscriber may have waiting come in.
    // They are notified as another instance would, with the payloads it sends: no order can
    // change for real while the table is locked.
    const sql = new pg.Client({ connectionString: db.url });
    const lock = new pg.Client({ connectionString: db.url });
    await sql.connect();
    await lock.connect();
    try {
      await lock.query('BEGIN');
      await lock.query('LOCK TABLE orders IN ACCESS EXCLUSIVE MODE');
      const notify = (changes: StatusChange[]) =>
        sql.query('SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p', [ORDER_STATUS_CHANNEL, notifyPayloads(changes)]);
      await notify([{ id: followed, customerId: 'carol', status: 'CONFIRMED' }]);
      // Its reading of the order waits on the lock.
      await eventually(
        async () =>
          (
            await sql.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM pg_stat_activity
               WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FROM orders WHERE id = $1%'`,
            )
          ).rows[0]?.n,
        (n) => n === 1,
      );
      const others = Array.from({ length: MAX_PENDING_CHANGES + 500 }, (_, i): StatusChange => ({
        id: `ORD-other-${i}`,
        customerId: 'dave',
        status: 'CANCELLED',
      }));
      await notify(others);
      // Notifications reach a listener within milliseconds; this leaves them ample time.
      await new Promise((r) => setTimeout(r, 1_000));
    } finally {
      await lock.query('COMMIT').catch(() => undefined);
      await lock.end();
      await sql.end();
    }

    expect(await gql(`mutation { cancelOrder(id: "${followed}") { status } }`)).toEqual({ cancelOrder: { status: 'CANCELLED' } });
    await Promise.race([follower.ended, new Promise((r) => setTimeout(r, 20_000))]);
    expect(follower.errors).toEqual([]);
    expect(follower.events.map((e) => e.orderStatusChanged.status)).toEqual(['PENDING', 'CANCELLED']);
    expect(follower.completed).toBe(true);
    expect(await tooSlowCount('orderStatusChanged')).toBe(0);
    expect(alive(), died()).toBe(true);
  });
});
