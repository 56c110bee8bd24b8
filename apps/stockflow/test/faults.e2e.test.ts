import pg from 'pg';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { EXCHANGES, queues, ROUTING_KEYS } from '@stockflow/contracts';
import { graphqlClient } from '@stockflow/client';
import {
  createCatalog,
  eventually,
  placeOrders,
  rawAmqp,
  startCluster,
  type Cluster,
  type Member,
  type RawAmqp,
  type ReceivedMessage,
} from '@stockflow/testing';
import { outboxBacklog, pendingCount, placeInBackground, purgeQueues, settleAndAudit } from './under-load.ts';

const servicesUnavailable = inject('servicesUnavailable');
const amqpUrl = inject('amqpUrl');
const ORDERS = 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const run = promisify(execFile);
/** The consumer priority startCluster gives inventory[0] of two: the highest, so it takes the deliveries. */
const INVENTORY_0_PRIORITY = 2;

/** rabbitmqctl's JSON rows for this run's vhost, the way the test setup already uses rabbitmqctl. */
async function rabbitmqctl<Row>(args: string[]): Promise<Row[]> {
  const { stdout } = await run('rabbitmqctl', ['-q', ...args, '--formatter', 'json'], { timeout: 30_000 });
  return JSON.parse(stdout) as Row[];
}

const vhost = decodeURIComponent(new URL(amqpUrl).pathname.slice(1));

/**
 * How many consumers RabbitMQ lists on a queue. One that was cancelled is gone from here at once;
 * a quorum queue still counts it in queue.declare's answer while it holds unacknowledged deliveries.
 */
async function consumersOf(queue: string): Promise<number> {
  const consumers = await rabbitmqctl<{ queue_name: string }>(['list_consumers', '-p', vhost, 'queue_name']);
  return consumers.filter((row) => row.queue_name === queue).length;
}

/** The deliveries of order.created.inventory that the consumer with this priority holds unacknowledged. */
async function unacknowledgedBy(priority: number): Promise<number> {
  const consumers = await rabbitmqctl<{ queue_name: string; channel_pid: string; arguments: [string, string, unknown][] }>([
    'list_consumers',
    '-p',
    vhost,
    'queue_name',
    'channel_pid',
    'arguments',
  ]);
  const consumer = consumers.find(
    (row) =>
      row.queue_name === queues.orderCreatedInventory.queue &&
      row.arguments.some(([key, , value]) => key === 'x-priority' && value === priority),
  );
  if (!consumer) return 0;
  const channels = await rabbitmqctl<{ pid: string; messages_unacknowledged: number }>(['list_channels', 'pid', 'messages_unacknowledged']);
  return channels.find((ch) => ch.pid === consumer.channel_pid)?.messages_unacknowledged ?? 0;
}

/** The ids of the orders the Order Service holds PENDING. */
const pendingIds = (c: Cluster) =>
  graphqlClient(c.orders.url)
    .data<{ orders: { nodes: { id: string }[] } }>('{ orders(status: PENDING, first: 500) { nodes { id } } }')
    .then((d) => d.orders.nodes.map((o) => o.id));

/** For each order, the event ids of the decisions it was answered with (StockReserved or StockRejected). */
function decisionEvents(answers: readonly ReceivedMessage[]): Map<string, Set<string>> {
  const byOrder = new Map<string, Set<string>>();
  for (const m of answers) {
    if (m.routingKey === ROUTING_KEYS.stockReleased) continue;
    const { order_id, event_id } = m.json as { order_id: string; event_id: string };
    byOrder.set(order_id, (byOrder.get(order_id) ?? new Set()).add(event_id));
  }
  return byOrder;
}

/** For each order, how many decisions (StockReserved or StockRejected) were published for it. */
function answerCounts(answers: readonly ReceivedMessage[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of answers) {
    if (m.routingKey === ROUTING_KEYS.stockReleased) continue;
    const { order_id } = m.json as { order_id: string };
    counts.set(order_id, (counts.get(order_id) ?? 0) + 1);
  }
  return counts;
}

/** The order ids of the OrderCreated messages waiting in `queue`, read and left there. */
async function queuedOrderIds(amqp: RawAmqp, queue: string): Promise<string[]> {
  // Unacknowledged on a channel of its own, they go back to the queue when it closes.
  const channel = await amqp.connection.acquire();
  const ids: string[] = [];
  for (;;) {
    const message = await channel.basicGet({ queue });
    if (!message) break;
    const raw: unknown = message.body;
    const body = Buffer.isBuffer(raw) || typeof raw === 'string' ? (JSON.parse(raw.toString()) as unknown) : raw;
    ids.push((body as { order_id: string }).order_id);
  }
  await channel.close();
  return ids;
}

/** The storm's catalog is stocked here: every invariant the audit checks holds at each of them too. */
const LOCATIONS = ['MAIN', 'EAST', 'WEST'] as const;
/** Units of each hot product that may be promised beyond its stock: demand goes far beyond. */
const HOT_BACKORDER_LIMIT = 5;

/**
 * Where the orders' units were reserved (from the ledger) and how many units are backordered: the
 * audit's per-location checks prove something only if allocation used every location and split
 * orders across them.
 */
async function allocation(c: Cluster) {
  const { products } = await graphqlClient(c.liveInventory().url).data<{
    products: { nodes: { backorderedStock: number; movements: { nodes: { orderId: string; locationCode: string }[] } }[] };
  }>(
    '{ products(first: 50) { nodes { backorderedStock movements(kinds: [RESERVATION], first: 500) { nodes { orderId locationCode } } } } }',
  );
  const placesOf = new Map<string, Set<string>>();
  for (const m of products.nodes.flatMap((p) => p.movements.nodes)) {
    placesOf.set(m.orderId, (placesOf.get(m.orderId) ?? new Set()).add(m.locationCode));
  }
  return {
    used: new Set([...placesOf.values()].flatMap((places) => [...places])),
    split: [...placesOf.values()].filter((places) => places.size > 1).length,
    backordered: products.nodes.reduce((sum, p) => sum + p.backorderedStock, 0),
  };
}

/** Settles and audits (per product and per location), and checks that the orders were allocated over every location. */
async function settleAndAuditLocations(c: Cluster) {
  const report = await settleAndAudit(c);
  const { used, split } = await allocation(c);
  expect(used).toEqual(new Set(LOCATIONS));
  expect(split).toBeGreaterThan(0);
  return report;
}

/**
 * Each scenario: the distributed platform as separate processes behind proxies of the test's own,
 * several hundred orders with hot products over a catalog stocked at three locations, a fault in
 * the middle, then the audit: nothing stuck, every product's counters matching its orders,
 * backorders within their limit, nothing negative, and each location holding exactly what it
 * received.
 */
describe.skipIf(servicesUnavailable)('fault injection under load', { timeout: 120_000 }, () => {
  let cluster: Cluster | undefined;

  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  const boot = async (inventoryInstances = 2, env: Record<string, string> = {}) => {
    await purgeQueues(amqpUrl);
    cluster = await startCluster({ amqpUrl, inventoryInstances, env });
    const catalog = await createCatalog(cluster.inventory[0]?.url as string, {
      products: 12,
      hot: 3,
      hotStock: 25,
      stock: 500,
      locations: LOCATIONS,
      hotBackorderLimit: HOT_BACKORDER_LIMIT,
    });
    return { cluster, catalog };
  };

  it('1. survives kill -9 of one of two inventory instances mid-batch', async () => {
    const { cluster: c, catalog } = await boot(2);
    const amqp = await rawAmqp(amqpUrl);
    const answers = await amqp.listen(EXCHANGES.inventory, 'stock.*');
    const { load, third } = placeInBackground(c, catalog, ORDERS);
    await third;
    // The instance taking the deliveries loses its database: the batch it is applying can then
    // neither commit nor fail, and it holds that batch, and what arrives after it, unacknowledged
    // until it is killed. The other instance takes what overflows.
    const victim = c.inventory[0] as Member;
    victim.database.cut();
    const { accepted, failed } = await load;
    expect(failed).toBe(0);
    // Once the other has answered everything else, the orders still PENDING are exactly those
    // whose OrderCreated the victim holds (RabbitMQ's count of its unacknowledged deliveries).
    const { held } = await eventually(
      async () => ({ pending: await pendingCount(c), held: await unacknowledgedBy(INVENTORY_0_PRIORITY) }),
      (s) => s.held > 0 && s.pending === s.held,
      60_000,
      500,
    );
    const heldOrders = await pendingIds(c);
    expect(heldOrders).toHaveLength(held);
    await victim.process.stop('SIGKILL');

    // Redelivered to the survivor: every order decided, each exactly once (one decision event,
    // however often it was answered), and the stock audit finds nothing wrong.
    const report = await settleAndAuditLocations(c);
    expect(report.orders.CONFIRMED + report.orders.CANCELLED).toBe(ORDERS);
    expect(report.orders.CANCELLED).toBeGreaterThan(0);
    // The hot products' backorders were filled up to their limit, and not beyond (the audit).
    expect((await allocation(c)).backordered).toBe(3 * HOT_BACKORDER_LIMIT);
    const decisions = await eventually(
      () => Promise.resolve(decisionEvents(answers.received)),
      (byOrder) => accepted.every((id) => byOrder.has(id)),
    );
    for (const id of accepted) expect(decisions.get(id)?.size, id).toBe(1);
    expect(heldOrders.every((id) => decisions.get(id)?.size === 1)).toBe(true);
    await amqp.close();
  });

  it('2. survives every broker connection cut for several seconds mid-load', async () => {
    const { cluster: c, catalog } = await boot(2);
    const { load, third } = placeInBackground(c, catalog, ORDERS);
    await third;
    c.cutBroker();
    await sleep(4_000);
    // Alive, and still ready (in its load balancer, taking orders), saying the broker is down;
    // inventory too: its API works without the broker.
    for (const m of [c.orders, c.inventory[0] as Member]) {
      const ready = await fetch(m.url.replace('/graphql', '/ready'));
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'degraded', checks: { broker: 'down', database: 'up' } });
      expect((await fetch(m.url.replace('/graphql', '/health'))).status).toBe(200);
    }
    c.restoreBroker();
    const { accepted, failed } = await load;
    // The Order Service kept accepting orders while the broker was gone.
    expect(failed).toBe(0);
    expect(accepted).toHaveLength(ORDERS);
    await settleAndAuditLocations(c);
  });

  it('3. survives the database connections cut mid-load', async () => {
    const { cluster: c, catalog } = await boot(2);
    const { load, third } = placeInBackground(c, catalog, ORDERS);
    await third;
    c.cutDatabase();
    await sleep(1_500);
    const during = await graphqlClient(c.orders.url).request('{ orders(first: 1) { totalCount } }');
    expect(during.errors?.[0]?.extensions?.code).toBe('UNAVAILABLE');
    expect(during.errors?.[0]?.message).toMatch(/temporarily unavailable/);
    // Out of its load balancer without its database, alive all the same.
    const ready = await fetch(c.orders.url.replace('/graphql', '/ready'));
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'not ready', checks: { database: 'down' } });
    expect((await fetch(c.orders.url.replace('/graphql', '/health'))).status).toBe(200);
    await sleep(2_500);
    c.restoreDatabase();
    const { accepted, failed } = await load;
    // Requests during the cut were refused with a clear error; every accepted order completes.
    expect(accepted.length + failed).toBe(ORDERS);
    expect(failed).toBeGreaterThan(0);
    await settleAndAuditLocations(c);
  });

  it('4. delivers the outbox after kill -9 of the Order Service between commit and publish', async () => {
    const { cluster: c, catalog } = await boot(1);
    // Its broker connection cut, the Order Service commits orders it cannot publish...
    c.orders.broker?.cut();
    const { accepted } = await placeOrders(c.orders.url, catalog, { count: 100, concurrency: 5 });
    expect(accepted).toHaveLength(100);
    // ...and dies before it could.
    await c.orders.process.stop('SIGKILL');
    c.orders.broker?.restore();
    await c.restartOrders();
    const report = await settleAndAuditLocations(c);
    expect(report.orders.PENDING).toBe(0);
    expect(report.orders.CONFIRMED + report.orders.CANCELLED).toBe(100);
  });

  it('5. changes nothing on duplicate deliveries and answers arriving out of order', async () => {
    const { cluster: c, catalog } = await boot(2);
    const amqp = await rawAmqp(amqpUrl);
    const created = await amqp.listen(EXCHANGES.orders, ROUTING_KEYS.orderCreated);
    const answers = await amqp.listen(EXCHANGES.inventory, 'stock.*');
    await placeOrders(c.orders.url, catalog, { count: 200, concurrency: 10 });
    await settleAndAuditLocations(c);
    const before = await graphqlClient(c.orders.url).data<{ orders: { nodes: { id: string; status: string }[] } }>(
      '{ orders(first: 500) { nodes { id status } } }',
    );
    // Every OrderCreated again, and every answer again in reverse order, plus the opposite answer
    // for a few orders (a confused producer).
    // Snapshots: the listeners keep receiving what is republished here.
    const createdOnce = [...created.received];
    const answeredOnce = [...answers.received];
    expect(createdOnce).toHaveLength(200);
    for (const m of createdOnce) await amqp.publish(EXCHANGES.orders, m.routingKey, m.raw);
    for (const m of [...answeredOnce].reverse()) await amqp.publish(EXCHANGES.inventory, m.routingKey, m.raw);
    for (const m of answeredOnce.slice(0, 10)) {
      const orderId = (m.json as { order_id: string }).order_id;
      await amqp.publish(EXCHANGES.inventory, ROUTING_KEYS.stockRejected, {
        event: 'StockRejected',
        order_id: orderId,
        reason: 'confused',
      });
    }
    await eventually(
      async () => {
        const depths = await Promise.all(
          [queues.orderCreatedInventory, queues.stockOrders].map((q) =>
            amqp.connection.queueDeclare({ queue: q.queue, passive: true }).then((r) => r.messageCount),
          ),
        );
        return depths.reduce((a, b) => a + b, 0);
      },
      (depth) => depth === 0,
    );
    await sleep(1_000);
    await amqp.close();
    const after = await graphqlClient(c.orders.url).data<{ orders: { nodes: { id: string; status: string }[] } }>(
      '{ orders(first: 500) { nodes { id status } } }',
    );
    expect(after.orders.nodes).toEqual(before.orders.nodes);
    await settleAndAuditLocations(c);
  });

  it('6. parks exactly the malformed messages of a burst interleaved with valid orders', async () => {
    const { cluster: c, catalog } = await boot(2);
    const amqp = await rawAmqp(amqpUrl);
    const malformed = ['{not json', '{"event":"OrderCreated","order_id":"X","items":[]}', '{"event":"OrderCreated"}', '42', 'null'];
    const load = placeOrders(c.orders.url, catalog, { count: ORDERS, concurrency: 10 });
    let sent = 0;
    for (let i = 0; i < 8; i += 1) {
      for (const body of malformed) {
        await amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCreated, `${body}${' '.repeat(i)}`);
        await amqp.publish(EXCHANGES.inventory, ROUTING_KEYS.stockReserved, `${body}${' '.repeat(i)}`);
        sent += 1;
      }
      await sleep(100);
    }
    await load;
    await settleAndAuditLocations(c);
    const depth = (queue: string) => amqp.connection.queueDeclare({ queue, passive: true }).then((r) => r.messageCount);
    await eventually(
      () => depth(queues.orderCreatedInventory.deadLetterQueue),
      (n) => n >= sent,
    );
    expect(await depth(queues.orderCreatedInventory.deadLetterQueue)).toBe(sent);
    expect(await depth(queues.stockOrders.deadLetterQueue)).toBe(sent);
    expect(await depth(queues.orderCancelledInventory.deadLetterQueue)).toBe(0);
    await amqp.close();
  });

  it('7. accepts orders while every inventory instance is down and processes them all when one returns', async () => {
    // Time enough for the test to see the held batch across the SIGTERM before it lets it go.
    const { cluster: c, catalog } = await boot(2, { SHUTDOWN_TIMEOUT_MS: '30000' });
    const amqp = await rawAmqp(amqpUrl);
    const answers = await amqp.listen(EXCHANGES.inventory, 'stock.*');
    const inventoryDb = new pg.Client({ connectionString: c.databases.inventory.url });
    const ordersDb = new pg.Client({ connectionString: c.databases.orders.url });
    const holder = new pg.Client({ connectionString: c.databases.inventory.url });
    for (const client of [inventoryDb, ordersDb, holder]) {
      client.on('error', () => undefined);
      await client.connect();
    }
    const decided = async () =>
      new Set((await inventoryDb.query<{ order_id: string }>('SELECT order_id FROM order_decisions')).rows.map((r) => r.order_id));
    const order = queues.orderCreatedInventory.queue;
    const { load, third } = placeInBackground(c, catalog, ORDERS);
    await third;

    // A plentiful product's row held, as a customer's transaction might: every batch naming it
    // waits for the lock, read but not committed, its deliveries unacknowledged.
    const product = catalog.all.find((id) => !catalog.hot.includes(id)) as number;
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM products WHERE id = $1 FOR UPDATE', [product]);
    const holderPid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
    // No order naming it is decided from here until the lock is let go.
    const decidedBefore = await decided();
    const waitingForIt = async () =>
      (
        await inventoryDb.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [
          holderPid,
        ])
      ).rows[0]?.n ?? 0;
    await eventually(waitingForIt, (n) => n > 0);

    // SIGTERM: each instance stops taking work, finishes its batches, flushes its outbox, exits 0.
    const exits = c.inventory.map((m) => m.process.stop('SIGTERM'));
    await eventually(
      () => consumersOf(order),
      (n) => n === 0,
      30_000,
      250,
    );
    // Neither instance takes deliveries any more, and a batch still waits for the row.
    expect(await waitingForIt()).toBeGreaterThan(0);
    await holder.query('COMMIT');
    expect(await Promise.all(exits)).toEqual([0, 0]);
    expect(c.inventory.every((m) => m.process.output().includes('shutting down'))).toBe(true);
    const { accepted, failed } = await load;
    expect(failed).toBe(0);
    expect(accepted).toHaveLength(ORDERS);
    expect(await pendingCount(c)).toBeGreaterThan(0);

    // The held batch was committed after the SIGTERM: orders naming the product were decided then.
    const decidedAfter = await decided();
    const namingProduct = new Set(
      (
        await ordersDb.query<{ id: string }>(`SELECT id FROM orders WHERE items::jsonb @> $1::jsonb`, [
          JSON.stringify([{ product_id: product }]),
        ])
      ).rows.map((r) => r.id),
    );
    const heldThrough = [...decidedAfter].filter((id) => !decidedBefore.has(id) && namingProduct.has(id));
    expect(heldThrough.length).toBeGreaterThan(0);
    // Every OrderCreated is decided or still in the queue, never both (committed but handed back,
    // so redelivered) nor neither (acknowledged but not committed).
    await eventually(
      () => outboxBacklog(c),
      (n) => n === 0,
    );
    await eventually(
      () => amqp.connection.queueDeclare({ queue: order, passive: true }).then((r) => r.messageCount),
      (n) => n === ORDERS - decidedAfter.size,
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\n${c.logs()}`);
    });
    const queued = await queuedOrderIds(amqp, order);
    expect(queued.filter((id) => decidedAfter.has(id))).toEqual([]);
    expect(new Set(queued).size).toBe(queued.length);
    expect([...queued, ...decidedAfter].sort()).toEqual([...accepted].sort());
    // Answered before the exit: nothing left in the outbox, one answer for each decided order.
    expect((await inventoryDb.query('SELECT id FROM outbox')).rows).toEqual([]);
    const answered = await eventually(
      () => Promise.resolve(answerCounts(answers.received)),
      (counts) => [...decidedAfter].every((id) => counts.has(id)),
    );
    for (const id of decidedAfter) expect(answered.get(id), id).toBe(1);

    for (const client of [inventoryDb, ordersDb, holder]) await client.end();
    await c.restartInventory(0);
    await settleAndAuditLocations(c);
    await amqp.close();
  });
});
