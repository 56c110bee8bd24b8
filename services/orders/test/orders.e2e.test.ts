import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { EXCHANGES, queues, ROUTING_KEYS } from '@stockflow/contracts';
import { createLogger, metricSum } from '@stockflow/observability';
import type { RunningService } from '@stockflow/runtime';
import {
  createTestDatabase,
  eventually,
  graphqlClient,
  rawAmqp,
  repoRoot,
  sseSubscribe,
  startTcpProxy,
  viaProxy,
  type TestDatabase,
} from '@stockflow/testing';
import { loadOrdersConfig } from '../src/config.ts';
import { startOrdersService } from '../src/service.ts';
import { serviceEnv, startInventory as startInventoryOn } from './services.ts';

const run = promisify(execFile);
const servicesUnavailable = inject('servicesUnavailable');
const logger = createLogger({ name: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });

describe.skipIf(servicesUnavailable)('Order Service on RabbitMQ and PostgreSQL', () => {
  let ordersDb: TestDatabase;
  let inventoryDb: TestDatabase;
  const running: RunningService[] = [];
  const amqpUrl = inject('amqpUrl');

  const ordersConfig = (url = amqpUrl, env: Record<string, string> = {}) => loadOrdersConfig({ ...serviceEnv(ordersDb, url), ...env });
  const startOrders = async (url?: string, env?: Record<string, string>) => {
    const s = await startOrdersService(ordersConfig(url, env), logger);
    running.push(s);
    return { service: s, gql: graphqlClient(`http://127.0.0.1:${s.port}/graphql`) };
  };
  const startInventory = async () => {
    const s = await startInventoryOn(inventoryDb, amqpUrl);
    running.push(s.service);
    return s;
  };
  const createProduct = async (gql: ReturnType<typeof graphqlClient>, sku: string, stock: number) =>
    Number(
      (
        await gql.data<{ createProduct: { id: string } }>(
          `mutation { createProduct(input: {sku: "${sku}", name: "${sku}", initialStock: ${stock}}) { id } }`,
        )
      ).createProduct.id,
    );
  const createOrder = async (gql: ReturnType<typeof graphqlClient>, productId: number, quantity = 1, idempotencyKey?: string) =>
    (
      await gql.data<{ createOrder: { id: string; status: string } }>(
        'mutation($input: CreateOrderInput!) { createOrder(input: $input) { id status } }',
        { input: { customerId: 'shopper', items: [{ productId: String(productId), quantity }], idempotencyKey } },
      )
    ).createOrder;
  /** A proxy of the test's own to the broker, to cut and restore. */
  const brokerProxy = () => {
    const broker = new URL(amqpUrl);
    return startTcpProxy({ host: broker.hostname, port: Number(broker.port || 5672) });
  };
  /** A service's /ready: its HTTP status and its body. */
  const readyOf = (service: RunningService) => async () => {
    const r = await fetch(`http://127.0.0.1:${service.port}/ready`);
    return { code: r.status, ...((await r.json()) as { status: string; checks: Record<string, string> }) };
  };
  const statusOf = async (gql: ReturnType<typeof graphqlClient>, id: string) =>
    (await gql.data<{ order: { status: string } }>(`{ order(id: "${id}") { status } }`)).order.status;
  interface Reconciled {
    republished: number;
    orderIds: string[];
    remaining: number;
    olderThanSeconds: number;
    processingLagSeconds: number;
  }
  const reconcileOnce = async (gql: ReturnType<typeof graphqlClient>, args: { olderThanSeconds?: number; limit?: number }) =>
    (
      await gql.data<{ reconcilePendingOrders: Reconciled }>(
        `mutation($s: Int, $limit: Int) {
          reconcilePendingOrders(olderThanSeconds: $s, limit: $limit) { republished orderIds remaining olderThanSeconds processingLagSeconds }
        }`,
        { s: args.olderThanSeconds, limit: args.limit },
      )
    ).reconcilePendingOrders;
  const untilConfirmed = async (gql: ReturnType<typeof graphqlClient>, orders: { id: string }[]) => {
    for (const o of orders) {
      await eventually(
        () => statusOf(gql, o.id),
        (s) => s === 'CONFIRMED',
        30_000,
      );
    }
  };

  beforeAll(async () => {
    inventoryDb = await createTestDatabase('orders_e2e_inventory');
  });
  // An orders database per test: what one test leaves (an order PENDING, an outbox row a relay
  // publishes later) must not count in the next one's gauges and metrics.
  beforeEach(async () => {
    ordersDb = await createTestDatabase('orders_e2e');
  });
  afterEach(async () => {
    while (running.length > 0) await running.pop()?.close();
    const amqp = await rawAmqp(amqpUrl);
    for (const q of Object.values(queues)) await amqp.connection.queuePurge(q.queue).catch(() => undefined);
    await amqp.close();
    await ordersDb?.drop();
  });
  afterAll(async () => {
    await inventoryDb?.drop();
  });

  it('keeps accepting orders, and stays ready, while the broker is unreachable; confirms them once it is back', async () => {
    const inventory = await startInventory();
    const productId = await createProduct(inventory.gql, 'OUTAGE', 100);
    const proxy = await brokerProxy();
    try {
      const orders = await startOrders(viaProxy(amqpUrl, proxy.port));
      proxy.cut();
      const ready = readyOf(orders.service);
      // In its load balancer still (200), saying what is missing.
      const during = await eventually(ready, (r) => r.checks.broker === 'down');
      expect(during).toMatchObject({ code: 200, status: 'degraded', checks: { database: 'up', broker: 'down' } });
      const accepted = [];
      for (let i = 0; i < 5; i += 1) accepted.push(await createOrder(orders.gql, productId));
      expect(accepted.map((o) => o.status)).toEqual(Array(5).fill('PENDING'));
      await new Promise((r) => setTimeout(r, 500));
      for (const o of accepted) expect(await statusOf(orders.gql, o.id)).toBe('PENDING');

      proxy.restore();
      await untilConfirmed(orders.gql, accepted);
      expect(await eventually(ready, (r) => r.checks.broker === 'up')).toMatchObject({ code: 200, status: 'ready' });
    } finally {
      await proxy.close();
    }
  });

  it('starts during a broker outage, takes orders and stays ready (degraded), and publishes them once the broker answers', async () => {
    const inventory = await startInventory();
    const productId = await createProduct(inventory.gql, 'COLD-START', 100);
    const proxy = await brokerProxy();
    try {
      proxy.cut();
      // A pod scheduled while the broker is down: it must come up and serve, not crash-loop.
      const orders = await startOrders(viaProxy(amqpUrl, proxy.port), { BREAKER_FAILURE_THRESHOLD: '1' });
      const accepted = [];
      for (let i = 0; i < 3; i += 1) accepted.push(await createOrder(orders.gql, productId));
      const ready = readyOf(orders.service);
      // Once its publishes have failed the broker's circuit opens: still in the load balancer.
      const during = await eventually(ready, (r) => r.checks['broker circuit'] === 'down', 30_000);
      expect(during).toMatchObject({ code: 200, status: 'degraded', checks: { database: 'up', broker: 'down' } });
      proxy.restore();
      await untilConfirmed(orders.gql, accepted);
    } finally {
      await proxy.close();
    }
  });

  it('keeps an OrderCreated that reaches no queue in the outbox, counts it, and publishes it once its queue is back', async () => {
    const orders = await startOrders();
    const amqp = await rawAmqp(amqpUrl);
    try {
      // The queue deleted (by an operator, a migration): the broker confirms, and returns, what it cannot route.
      await amqp.connection.queueDelete({ queue: queues.orderCreatedInventory.queue });
      const created = await createOrder(orders.gql, 1);
      const metrics = () => fetch(`http://127.0.0.1:${orders.service.port}/metrics`).then((r) => r.text());
      const unroutable = (text: string) =>
        metricSum(text, 'stockflow_messages_published_total', { routing_key: ROUTING_KEYS.orderCreated, outcome: 'unroutable' });
      await eventually(metrics, (text) => unroutable(text) >= 2);
      const { rows } = await orders.service.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM outbox WHERE routing_key = $1 AND last_error LIKE '%reached no queue%'`,
        [ROUTING_KEYS.orderCreated],
      );
      expect(rows[0]?.n).toBe(1);
      expect(
        metricSum(await metrics(), 'stockflow_messages_published_total', { routing_key: ROUTING_KEYS.orderCreated, outcome: 'confirmed' }),
      ).toBe(0);
      // An inventory start declares the queue again; the kept event gets there and is decided.
      const inventory = await startInventory();
      await createProduct(inventory.gql, 'UNROUTABLE', 5);
      await eventually(
        () => statusOf(orders.gql, created.id),
        (s) => s === 'CONFIRMED' || s === 'CANCELLED',
        30_000,
      );
      await eventually(
        () => orders.service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox').then((r) => r.rows[0]?.n),
        (n) => n === 0,
      );
    } finally {
      await amqp.close();
    }
  });

  it('sends the OrderCreated of stale PENDING orders again exactly once, however many instances reconcile at once', async () => {
    const a = await startOrders();
    const b = await startOrders();
    const amqp = await rawAmqp(amqpUrl);
    try {
      const wire = await amqp.listen(EXCHANGES.orders, ROUTING_KEYS.orderCreated);
      const stale = [];
      for (let i = 0; i < 30; i += 1) stale.push((await createOrder(a.gql, 1)).id);
      const fresh = (await createOrder(a.gql, 1)).id;
      await wire.waitFor(31);
      const gauge = async () =>
        metricSum(
          await fetch(`http://127.0.0.1:${a.service.port}/metrics`).then((r) => r.text()),
          'stockflow_oldest_pending_order_age_seconds',
        );
      expect(await gauge()).toBeLessThan(60);
      // Nobody answered them for ten minutes (no inventory runs here).
      await a.service.db.query(`UPDATE orders SET created_at = now() - interval '10 minutes' WHERE id = ANY($1::text[])`, [stale]);
      expect(await gauge()).toBeGreaterThanOrEqual(600);

      // And two thousand more, so that the runs below take several batches each and overlap.
      await a.service.db.query(
        `INSERT INTO orders (id, customer_id, status, items, created_at)
         SELECT 'ORD-bulk-' || g, 'bulk', 'PENDING', '[{"product_id": 1, "quantity": 1}]', now() - interval '10 minutes'
         FROM generate_series(1, 2000) g`,
      );
      const allStale = [...stale, ...Array.from({ length: 2000 }, (_, i) => `ORD-bulk-${i + 1}`)];

      // Each run pages through in batches of 100, as npm run reconcile does, until none is due
      // (or what is left is held by another run).
      const reconcile = async (gql: ReturnType<typeof graphqlClient>) => {
        let sent = 0;
        for (;;) {
          const page = await reconcileOnce(gql, { olderThanSeconds: 300, limit: 100 });
          expect(page.republished).toBeLessThanOrEqual(100);
          sent += page.republished;
          if (page.remaining === 0 || page.republished === 0) return sent;
        }
      };
      const counts = await Promise.all([reconcile(a.gql), reconcile(b.gql), reconcile(a.gql), reconcile(b.gql)]);
      expect(counts.reduce((x, y) => x + y, 0)).toBe(allStale.length);
      // A run straight after sends nothing: each was sent again just now.
      expect(await reconcileOnce(a.gql, { olderThanSeconds: 300 })).toMatchObject({ republished: 0, remaining: 0 });
      const again = (await wire.waitFor(31 + allStale.length, 30_000)).slice(31).map((m) => (m.json as { order_id: string }).order_id);
      expect(new Set(again).size).toBe(again.length);
      expect(again.sort()).toEqual(allStale.sort());
      expect(again).not.toContain(fresh);
      await new Promise((r) => setTimeout(r, 300));
      expect(wire.received).toHaveLength(31 + allStale.length);
    } finally {
      await amqp.close();
    }
  });

  it('reconciles in bounded batches, says what is left, and leaves alone orders younger than the current processing lag', async () => {
    const orders = await startOrders();
    const inventory = await startInventory();
    const productId = await createProduct(inventory.gql, 'LAGGING', 100);
    const wire = await (async () => {
      const amqp = await rawAmqp(amqpUrl);
      return { amqp, created: await amqp.listen(EXCHANGES.orders, ROUTING_KEYS.orderCreated) };
    })();
    try {
      // Answered by the Inventory Service: decided_at is set, and the lag is the few moments it took.
      const answered = await createOrder(orders.gql, productId);
      await untilConfirmed(orders.gql, [answered]);
      const quiet = await reconcileOnce(orders.gql, { olderThanSeconds: 0 });
      expect(quiet.republished).toBe(0);
      expect(quiet.processingLagSeconds).toBeGreaterThan(0);
      expect(quiet.processingLagSeconds).toBeLessThan(10);

      const db = orders.service.db;
      const insert = (prefix: string, n: number, age: string) =>
        db.query(
          `INSERT INTO orders (id, customer_id, status, items, created_at)
           SELECT $1 || g, 'lag', 'PENDING', '[{"product_id": 1, "quantity": 1}]', now() - $3::interval FROM generate_series(1, $2) g`,
          [prefix, n, age],
        );
      // A flash sale: the latest answers came two minutes after their orders were placed (and
      // one order, sent again by an earlier repair, after an hour: its wait is the loss, not the queue).
      await insert('ORD-answered-', 20, '2 minutes');
      await db.query(`UPDATE orders SET status = 'CONFIRMED', decided_at = now() WHERE id LIKE 'ORD-answered-%'`);
      await insert('ORD-repaired-', 1, '1 hour');
      await db.query(
        `UPDATE orders SET status = 'CONFIRMED', decided_at = now(), republished_at = now() - interval '50 minutes' WHERE id LIKE 'ORD-repaired-%'`,
      );
      // Orders a minute old are still in the queue; those five minutes old were lost.
      await insert('ORD-queued-', 30, '1 minute');
      await insert('ORD-lost-', 250, '5 minutes');

      const first = await reconcileOnce(orders.gql, { olderThanSeconds: 30 });
      expect(first.processingLagSeconds).toBeGreaterThanOrEqual(120);
      expect(first.processingLagSeconds).toBeLessThan(130);
      expect(first).toMatchObject({ republished: 200, remaining: 50, olderThanSeconds: Math.ceil(first.processingLagSeconds) });
      expect(first.orderIds.every((id) => id.startsWith('ORD-lost-'))).toBe(true);
      const second = await reconcileOnce(orders.gql, { olderThanSeconds: 30, limit: 1_000 });
      expect(second).toMatchObject({ republished: 50, remaining: 0 });
      const sent = [...first.orderIds, ...second.orderIds];
      expect(new Set(sent).size).toBe(250);
      expect(sent.every((id) => id.startsWith('ORD-lost-'))).toBe(true);
      await wire.created.waitFor(1 + 250);
      await new Promise((r) => setTimeout(r, 300));
      expect(
        wire.created.received
          .slice(1)
          .map((m) => (m.json as { order_id: string }).order_id)
          .sort(),
      ).toEqual([...sent].sort());

      for (const limit of [0, 1_001]) {
        const refused = await orders.gql.request(`mutation { reconcilePendingOrders(limit: ${limit}) { republished } }`);
        expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'limit' });
      }
    } finally {
      await wire.amqp.close();
    }
  });

  it('npm run reconcile pages through everything due at its rate', async () => {
    const orders = await startOrders();
    const db = orders.service.db;
    await db.query(
      `INSERT INTO orders (id, customer_id, status, items, created_at)
       SELECT 'ORD-paced-' || g, 'paced', 'PENDING', '[{"product_id": 1, "quantity": 1}]', now() - interval '10 minutes'
       FROM generate_series(1, 45) g`,
    );
    const { stdout } = await run(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(repoRoot, 'tools', 'src', 'reconcile.ts'),
        '--older-than',
        '5m',
        '--batch',
        '10',
        '--rate',
        '40',
        '--orders-url',
        `http://127.0.0.1:${orders.service.port}/graphql`,
      ],
      { cwd: repoRoot },
    );
    expect(stdout).toContain('sent OrderCreated again for 45 orders PENDING for over 300 s');
    const { rows } = await db.query<{ sent: number; spreadMs: number }>(
      `SELECT count(*)::int AS sent, extract(epoch FROM max(republished_at) - min(republished_at))::float8 * 1000 AS "spreadMs"
       FROM orders WHERE id LIKE 'ORD-paced-%' AND republished_at IS NOT NULL`,
    );
    // Five batches of at most ten, at 40 orders a second: four pauses of 250 ms between them.
    expect(rows[0]?.sent).toBe(45);
    expect(rows[0]?.spreadMs).toBeGreaterThanOrEqual(950);
  });

  it('delivers a status change to a subscriber on another instance than the one that processed it', async () => {
    const a = await startOrders();
    const b = await startOrders();
    const inventory = await startInventory();
    const productId = await createProduct(inventory.gql, 'MULTI', 10);
    const created = await createOrder(a.gql, productId);
    const sub = await sseSubscribe<{ orderStatusChanged: { id: string; status: string } }>(
      `http://127.0.0.1:${b.service.port}/graphql`,
      'subscription($id: ID!) { orderStatusChanged(id: $id) { id status } }',
      { id: created.id },
    );
    // Cancelled through instance A: B serves the subscription and never touched the order.
    await eventually(
      () => statusOf(a.gql, created.id),
      (s) => s === 'CONFIRMED',
    ).catch(() => undefined);
    await a.gql.data(`mutation { cancelOrder(id: "${created.id}") { id } }`);
    await sub.waitFor((events) => events.some((e) => e.orderStatusChanged.status === 'CANCELLED'));
    sub.close();
    expect(sub.events.at(-1)?.orderStatusChanged).toEqual({ id: created.id, status: 'CANCELLED' });
  });

  it('sends a subscriber the order as it is first, and ends the stream after a final status, also for orders cancelled as their subscription starts', async () => {
    const orders = await startOrders();
    const inventory = await startInventory();
    const productId = await createProduct(inventory.gql, 'FOLLOWED', 100);
    const url = `http://127.0.0.1:${orders.service.port}/graphql`;
    const follow = (id: string) =>
      sseSubscribe<{ orderStatusChanged: { id: string; status: string } }>(
        url,
        'subscription($id: ID!) { orderStatusChanged(id: $id) { id status } }',
        { id },
      );
    const statuses = (sub: Awaited<ReturnType<typeof follow>>) => sub.events.map((e) => e.orderStatusChanged.status);
    const cancel = (id: string) => orders.gql.data(`mutation { cancelOrder(id: "${id}") { id } }`);
    const ended = (subs: Awaited<ReturnType<typeof follow>>[]) =>
      Promise.race([
        Promise.all(subs.map((s) => s.ended)).then(() => 'ended'),
        new Promise((r) => setTimeout(() => r('still open'), 20_000)),
      ]);

    // It moved before anyone subscribed: the subscriber is told where it is at once.
    const created = await createOrder(orders.gql, productId);
    await untilConfirmed(orders.gql, [created]);
    const sub = await follow(created.id);
    await sub.waitFor((events) => events.length > 0);
    expect(statuses(sub)).toEqual(['CONFIRMED']);
    await cancel(created.id);
    expect(await ended([sub])).toBe('ended');
    expect(sub.completed).toBe(true);
    expect(statuses(sub)).toEqual(['CONFIRMED', 'CANCELLED']);

    // Already final: its state, then the end.
    const late = await follow(created.id);
    expect(await ended([late])).toBe('ended');
    expect(statuses(late)).toEqual(['CANCELLED']);

    // Subscribing while the order is being cancelled: each stream still ends with the cancellation.
    // (Whether a change can fall between the first read and the listening is follow-order.unit's
    // to show: here that moment is too short to be hit at will.)
    const many = await Promise.all(Array.from({ length: 40 }, () => createOrder(orders.gql, productId)));
    await untilConfirmed(orders.gql, many);
    const subs = await Promise.all(many.map(async (o) => (await Promise.all([follow(o.id), cancel(o.id)]))[0]));
    expect(await ended(subs)).toBe('ended');
    for (const s of subs) {
      expect(s.completed).toBe(true);
      expect(statuses(s).at(-1)).toBe('CANCELLED');
      expect(new Set(statuses(s)).size).toBe(statuses(s).length);
    }
  });

  it('ends with nothing held when the order is cancelled before inventory ever saw it', async () => {
    const orders = await startOrders();
    const created = await createOrder(orders.gql, 1, 2);
    await orders.gql.data(`mutation { cancelOrder(id: "${created.id}", reason: "too slow") { id } }`);
    // Both OrderCreated and OrderCancelled now wait in their queues; inventory starts only now
    // and takes them from two queues in either order.
    const inventory = await startInventory();
    const rows = await inventory.service.db.query<{ id: number }>('SELECT id FROM products WHERE id = 1');
    if (rows.rowCount === 0) await createProduct(inventory.gql, 'LATE-1', 10);
    await eventually(
      () => inventory.service.db.query('SELECT 1 FROM order_decisions WHERE order_id = $1', [created.id]).then((r) => r.rowCount),
      (n) => n === 1,
    );
    await eventually(
      () =>
        inventory.service.db
          .query<{ held: number }>(`SELECT count(*)::int AS held FROM reservations WHERE order_id = $1 AND status = 'HELD'`, [created.id])
          .then((r) => r.rows[0]?.held),
      (held) => held === 0,
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(await statusOf(orders.gql, created.id)).toBe('CANCELLED');
    const held = await inventory.service.db.query(`SELECT 1 FROM reservations WHERE order_id = $1 AND status = 'HELD'`, [created.id]);
    expect(held.rowCount).toBe(0);
  });

  it('answers a repeated createOrder with the same idempotency key with the same order', async () => {
    const orders = await startOrders();
    const first = await createOrder(orders.gql, 3, 1, 'checkout-42');
    const second = await createOrder(orders.gql, 3, 1, 'checkout-42');
    expect(second.id).toBe(first.id);
    const reused = await orders.gql.request(
      'mutation { createOrder(input: {customerId: "shopper", items: [{productId: "3", quantity: 5}], idempotencyKey: "checkout-42"}) { id } }',
    );
    expect(reused.errors?.[0]?.extensions?.code).toBe('CONFLICT');
  });

  it('ignores a late or repeated answer once the order has left PENDING', async () => {
    const orders = await startOrders();
    const created = await createOrder(orders.gql, 5);
    await orders.gql.data(`mutation { cancelOrder(id: "${created.id}") { id } }`);
    const amqp = await rawAmqp(amqpUrl);
    await amqp.publish(EXCHANGES.inventory, ROUTING_KEYS.stockReserved, {
      event: 'StockReserved',
      order_id: created.id,
      items: [{ product_id: 5, quantity: 1 }],
    });
    await amqp.publish(EXCHANGES.inventory, ROUTING_KEYS.stockRejected, { event: 'StockRejected', order_id: created.id, reason: 'late' });
    await eventually(
      () => amqp.connection.queueDeclare({ queue: queues.stockOrders.queue, passive: true }).then((q) => q.messageCount),
      (n) => n === 0,
    );
    await new Promise((r) => setTimeout(r, 300));
    await amqp.close();
    const order = await orders.gql.data<{ order: { status: string; reason: string } }>(`{ order(id: "${created.id}") { status reason } }`);
    expect(order.order).toEqual({ status: 'CANCELLED', reason: 'Cancelled by request' });
  });

  it.each([
    ['no items', '{customerId: "c", items: []}', /items must not be empty/],
    ['a zero quantity', '{customerId: "c", items: [{productId: "1", quantity: 0}]}', /quantity must be a whole number from 1/],
    ['a negative quantity', '{customerId: "c", items: [{productId: "1", quantity: -1}]}', /quantity must be a whole number from 1/],
    ['an absurd quantity', '{customerId: "c", items: [{productId: "1", quantity: 1000000}]}', /at most 10000|from 1 to 10000/],
    ['a bad product id', '{customerId: "c", items: [{productId: "abc", quantity: 1}]}', /productId must be a product id/],
    ['an empty customer', '{customerId: " ", items: [{productId: "1", quantity: 1}]}', /customerId must be 1 to 100 characters/],
  ])('refuses an order with %s', async (_label, input, message) => {
    const orders = await startOrders();
    const res = await orders.gql.request(`mutation { createOrder(input: ${input}) { id } }`);
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(res.errors?.[0]?.message).toMatch(message);
  });

  it('refuses more than 100 lines, and unknown orders', async () => {
    const orders = await startOrders();
    const lines = Array.from({ length: 101 }, () => ({ productId: '1', quantity: 1 }));
    const res = await orders.gql.request('mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }', {
      input: { customerId: 'c', items: lines },
    });
    expect(res.errors?.[0]?.message).toBe('an order may have at most 100 lines');
    const missing = await orders.gql.request('mutation { fulfillOrder(id: "ORD-nope") { id } }');
    expect(missing.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await orders.gql.data<{ order: null }>('{ order(id: "ORD-nope") { id } }')).order).toBeNull();
  });
});
