import { afterEach, describe, expect, inject, it } from 'vitest';
import { EXCHANGES, queues, ROUTING_KEYS } from '@stockflow/contracts';
import { graphqlClient } from '@stockflow/platform';
import { createCatalog, eventually, placeOrders, rawAmqp, startCluster, type Cluster, type Member } from '@stockflow/testing';
import { pendingCount, placeInBackground, purgeQueues, settleAndAudit } from './under-load.ts';

const servicesUnavailable = inject('servicesUnavailable');
const amqpUrl = inject('amqpUrl');
const ORDERS = 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Each scenario: the distributed platform as separate processes behind proxies of the test's own,
 * several hundred orders with hot products, a fault in the middle, then the audit: nothing
 * stuck, every product's counters matching its orders, nothing negative.
 */
describe.skipIf(servicesUnavailable)('fault injection under load', { timeout: 120_000 }, () => {
  let cluster: Cluster | undefined;

  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  const boot = async (inventoryInstances = 2) => {
    await purgeQueues(amqpUrl);
    cluster = await startCluster({ amqpUrl, inventoryInstances });
    const catalog = await createCatalog(cluster.inventory[0]?.url as string, { products: 12, hot: 3, hotStock: 25, stock: 500 });
    return { cluster, catalog };
  };

  it('1. survives kill -9 of one of two inventory instances mid-batch', async () => {
    const { cluster: c, catalog } = await boot(2);
    let killed = false;
    const load = await placeOrders(c.orders.url, catalog, {
      count: ORDERS,
      concurrency: 10,
      onPlaced: (n) => {
        if (n === ORDERS / 3 && !killed) {
          killed = true;
          void c.inventory[0]?.process.stop('SIGKILL');
        }
      },
    });
    expect(killed).toBe(true);
    expect(load.failed).toBe(0);
    const report = await settleAndAudit(c);
    expect(report.orders.CONFIRMED + report.orders.CANCELLED).toBe(ORDERS);
    expect(report.orders.CANCELLED).toBeGreaterThan(0);
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
    await settleAndAudit(c);
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
    await settleAndAudit(c);
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
    const report = await settleAndAudit(c);
    expect(report.orders.PENDING).toBe(0);
    expect(report.orders.CONFIRMED + report.orders.CANCELLED).toBe(100);
  });

  it('5. changes nothing on duplicate deliveries and answers arriving out of order', async () => {
    const { cluster: c, catalog } = await boot(2);
    const amqp = await rawAmqp(amqpUrl);
    const created = await amqp.listen(EXCHANGES.orders, ROUTING_KEYS.orderCreated);
    const answers = await amqp.listen(EXCHANGES.inventory, 'stock.*');
    await placeOrders(c.orders.url, catalog, { count: 200, concurrency: 10 });
    await settleAndAudit(c);
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
    await settleAndAudit(c);
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
    await settleAndAudit(c);
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
    const { cluster: c, catalog } = await boot(2);
    const { load, third } = placeInBackground(c, catalog, ORDERS);
    await third;
    // SIGTERM: each instance stops taking work, finishes its batch, flushes its outbox, exits 0.
    const codes = await Promise.all(c.inventory.map((m) => m.process.stop('SIGTERM')));
    expect(codes).toEqual([0, 0]);
    expect(c.inventory.every((m) => m.process.output().includes('shutting down'))).toBe(true);
    const { accepted, failed } = await load;
    expect(failed).toBe(0);
    expect(accepted).toHaveLength(ORDERS);
    expect(await pendingCount(c)).toBeGreaterThan(0);
    await c.restartInventory(0);
    await settleAndAudit(c);
  });
});
