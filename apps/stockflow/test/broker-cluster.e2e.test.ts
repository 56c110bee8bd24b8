import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEAD_LETTER_REASON_HEADER, EXCHANGES, queueDeclarations, queues, ROUTING_KEYS } from '@stockflow/contracts';
import { graphqlClient } from '@stockflow/client';
import { metricSum } from '@stockflow/observability';
import {
  brokerNodes,
  connectionNodes,
  createCatalog,
  createClusterVhost,
  awaitQueuesHealthy,
  ensureBrokerCluster,
  eventually,
  killNode,
  listQueues,
  placeOrders,
  queueLeader,
  quorumQueueStates,
  rawAmqp,
  repoRoot,
  startCluster,
  startNode,
  stopNode,
  type Cluster,
} from '@stockflow/testing';
import { keepPlacing, outboxBacklog, pendingCount, placeInBackground, purgeQueues, settleAndAudit } from './under-load.ts';

const run = promisify(execFile);
const clusterUnavailable = inject('brokerClusterUnavailable');
const ORDERS = 300;

/**
 * The distributed platform on a 3-node RabbitMQ cluster with quorum queues (the production
 * topology), each scenario losing broker nodes under a hot load and ending with the stock audit:
 * no order stuck, every product's counters matching its orders (nothing reserved twice).
 */
describe.skipIf(clusterUnavailable)('on a 3-node RabbitMQ cluster with quorum queues', { timeout: 300_000 }, () => {
  let vhost: Awaited<ReturnType<typeof createClusterVhost>>;
  let cluster: Cluster | undefined;

  beforeAll(async () => {
    vhost = await createClusterVhost();
  });
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
    // Whatever a scenario stopped is running again, and caught up, for the next one.
    await ensureBrokerCluster();
    await awaitQueuesHealthy(vhost.vhost);
  });
  afterAll(async () => {
    await vhost?.remove();
  });

  /** `nodes`: the nodes the services are given (all three unless said). */
  const boot = async (nodes: string[] = vhost.urls) => {
    await purgeQueues(vhost.url);
    cluster = await startCluster({ amqpUrl: nodes.join(','), inventoryInstances: 2 });
    const catalog = await createCatalog(cluster.inventory[0]?.url as string, { products: 12, hot: 3, hotStock: 25, stock: 500 });
    return { c: cluster, catalog };
  };
  /** `npm run reconcile -- --older-than D` against the cluster's Order Service; its output. */
  const reconcileCommand = async (c: Cluster, olderThan: string) =>
    (
      await run(
        process.execPath,
        ['--import', 'tsx', path.join(repoRoot, 'tools', 'src', 'reconcile.ts'), '--older-than', olderThan, '--orders-url', c.orders.url],
        { cwd: repoRoot },
      )
    ).stdout;
  const metricsOf = (url: string) => fetch(url.replace('/graphql', '/metrics')).then((r) => r.text());

  it('declares every queue as a quorum queue', async () => {
    await boot();
    const declared = Object.values(queues).flatMap((q) => [q.queue, q.deadLetterQueue, ...q.retryQueues.map((r) => r.queue)]);
    const types = Object.fromEntries((await listQueues(vhost.vhost)).map((q) => [q.name, q.type]));
    expect(Object.fromEntries(declared.map((q) => [q, types[q]]))).toEqual(Object.fromEntries(declared.map((q) => [q, 'quorum'])));
  });

  it('1. loses no order through kill -9 of the node leading order.created.inventory', async () => {
    // The services are connected to the other two nodes: what is tested is the queue's failover
    // alone (a new leader elected while publishes and consumers go on), not a reconnect.
    const amqp = await rawAmqp(vhost.url);
    await amqp.connection.queueDeclare(queueDeclarations(queues.orderCreatedInventory, 'quorum').main);
    await amqp.close();
    const leader = await queueLeader(vhost.vhost, queues.orderCreatedInventory.queue);
    const others = vhost.urls.filter((_, i) => brokerNodes[i]?.name !== leader);
    expect(others).toHaveLength(2);
    const { c, catalog } = await boot(others);
    const { load, third } = placeInBackground(c, catalog, ORDERS);
    await third;
    await killNode(leader);
    const { accepted, failed } = await load;
    expect(failed).toBe(0);
    expect(accepted).toHaveLength(ORDERS);
    // Another node leads the queue now (Raft elects one of the two left).
    const next = await eventually(
      () => queueLeader(vhost.vhost, queues.orderCreatedInventory.queue),
      (node) => node !== leader,
      30_000,
      250,
    );
    expect(brokerNodes.map((n) => n.name)).toContain(next);
    await startNode(leader);
    const report = await settleAndAudit(c, 120_000);
    expect(report.orders.CONFIRMED + report.orders.CANCELLED).toBe(ORDERS);
    expect(report.orders.CANCELLED).toBeGreaterThan(0);
  });

  it('2. the Order Service moves to another node when its node is killed, and keeps publishing', async () => {
    const { c, catalog } = await boot();
    const ordersNode = async () => (await connectionNodes(vhost.vhost)).find((n) => n.clientName === 'orders')?.node;
    const before = await eventually(ordersNode, (node) => node !== undefined);
    const { load, third } = placeInBackground(c, catalog, ORDERS);
    await third;
    await killNode(before as string);
    const { accepted, failed } = await load;
    expect(failed).toBe(0);
    expect(accepted).toHaveLength(ORDERS);
    const after = await eventually(ordersNode, (node) => node !== undefined && node !== before, 30_000, 250);
    expect(after).not.toBe(before);
    // Its outbox is empty again: everything it accepted was published through the other node.
    await eventually(
      () => outboxBacklog(c),
      (backlog) => backlog === 0,
      60_000,
      250,
    ).catch(async (error: unknown) => {
      // Publishes refused this long mean a queue without a leader or a majority: say which.
      const queues = await quorumQueueStates(vhost.vhost).catch((e: unknown) => `(queues unreadable: ${String(e)})`);
      throw new Error(`${(error as Error).message}\nquorum queues after killing ${String(before)}:\n${queues}\n${c.logs()}`);
    });
    await startNode(before as string);
    await settleAndAudit(c, 120_000);
  });

  it('3. survives a rolling restart of all three nodes, one at a time, under a steady load', async () => {
    const { c, catalog } = await boot();
    const load = keepPlacing(c, catalog);
    for (const node of brokerNodes) {
      await stopNode(node.name);
      await new Promise((r) => setTimeout(r, 1_000));
      await startNode(node.name);
    }
    const { accepted, failed } = await load.stop();
    expect(failed).toBe(0);
    expect(accepted.length).toBeGreaterThan(100);
    const report = await settleAndAudit(c, 120_000);
    expect(report.orders.CONFIRMED + report.orders.CANCELLED).toBe(accepted.length);
  });

  it('4. order.created.inventory deleted while orders keep coming: kept in the outbox until an inventory start declares it again', async () => {
    const { c, catalog } = await boot();
    const { load, third } = placeInBackground(c, catalog, ORDERS);
    await third;
    // Every inventory instance stops (finishing its batches), and the queue is deleted with
    // whatever it held: those events are gone from the broker, as an operator's delete makes them.
    expect(await Promise.all(c.inventory.map((m) => m.process.stop('SIGTERM')))).toEqual([0, 0]);
    const amqp = await rawAmqp(vhost.url);
    await amqp.connection.queueDelete({ queue: queues.orderCreatedInventory.queue });
    await amqp.close();
    const { accepted, failed } = await load;
    expect(failed).toBe(0);
    expect(accepted).toHaveLength(ORDERS);
    // What the Order Service published after the delete reached no queue: counted, and kept.
    await eventually(
      () => metricsOf(c.orders.url),
      (text) =>
        metricSum(text, 'stockflow_messages_published_total', { routing_key: ROUTING_KEYS.orderCreated, outcome: 'unroutable' }) > 0,
    );
    expect(await outboxBacklog(c)).toBeGreaterThan(0);

    await c.restartInventory(0);
    // Every event kept in the outbox gets through once the queue is back.
    await eventually(
      () => outboxBacklog(c),
      (n) => n === 0,
      60_000,
      250,
    );
    // Left PENDING: the orders whose events the delete took with it, and any whose event was on
    // its way into the queue as it was deleted (RabbitMQ confirms such a message: docs/events.md).
    // (How many the delete took says little: redeliveries put some orders in the queue twice, and
    // some it held were decided already.)
    let last = -1;
    const stuck = await eventually(
      () => pendingCount(c),
      (n) => {
        const settled = n === last;
        last = n;
        return settled;
      },
      60_000,
      1_000,
    );
    expect(stuck).toBeLessThan(accepted.length / 2);
    // The repair sends them again.
    await reconcileCommand(c, '0s');
    await settleAndAudit(c, 120_000);
  });

  it('5. repairs with npm run reconcile an order whose answer was parked', async () => {
    const { c, catalog } = await boot();
    // No inventory runs while the orders come in; then the Order Service dies (its outbox
    // empty), and inventory answers with nobody to take the answers: they wait in stock.orders.
    await Promise.all(c.inventory.map((m) => m.process.stop('SIGTERM')));
    const { accepted } = await placeOrders(c.orders.url, catalog, { count: 60, concurrency: 10 });
    await eventually(
      () => outboxBacklog(c),
      (n) => n === 0,
    );
    await c.orders.process.stop('SIGKILL');
    await c.restartInventory(0);
    const amqp = await rawAmqp(vhost.url);
    const answers = () => amqp.connection.queueDeclare({ queue: queues.stockOrders.queue, passive: true }).then((r) => r.messageCount);
    await eventually(answers, (n) => n >= accepted.length, 60_000, 250);
    // Five answers parked, as a consumer that kept failing on them would have parked them.
    const parked: string[] = [];
    const channel = await amqp.connection.acquire();
    for (let i = 0; i < 5; i += 1) {
      const m = await channel.basicGet({ queue: queues.stockOrders.queue });
      if (!m) throw new Error('no answer to park');
      await amqp.publish(EXCHANGES.deadLetter, queues.stockOrders.queue, JSON.stringify(m.body), {
        headers: { [DEAD_LETTER_REASON_HEADER]: 'handler failed 5 times' },
      });
      channel.basicAck({ deliveryTag: m.deliveryTag });
      parked.push((m.body as { order_id: string }).order_id);
    }
    await channel.close();
    await amqp.close();
    await c.restartOrders();
    const orders = graphqlClient(c.orders.url);
    const statuses = () =>
      orders
        .data<{ orders: { nodes: { id: string; status: string }[] } }>(`{ orders(first: 500) { nodes { id status } } }`)
        .then((d) => Object.fromEntries(d.orders.nodes.map((o) => [o.id, o.status])));
    const stuck = await eventually(statuses, (s) => Object.values(s).filter((x) => x === 'PENDING').length === parked.length, 60_000, 250);
    expect(
      Object.keys(stuck)
        .filter((id) => stuck[id] === 'PENDING')
        .sort(),
    ).toEqual([...parked].sort());
    // Seen: the gauge shows how long the oldest has waited.
    expect(metricSum(await metricsOf(c.orders.url), 'stockflow_oldest_pending_order_age_seconds')).toBeGreaterThan(0);

    await new Promise((r) => setTimeout(r, 1_100));
    const stdout = await reconcileCommand(c, '1s');
    expect(stdout).toContain(`sent OrderCreated again for ${parked.length} orders`);
    // Inventory answers each repeat with its first decision: the audit finds nothing held twice.
    const report = await settleAndAudit(c, 60_000);
    expect(report.orders.CONFIRMED + report.orders.CANCELLED).toBe(accepted.length);
    expect(metricSum(await metricsOf(c.orders.url), 'stockflow_oldest_pending_order_age_seconds')).toBe(0);
  });
});
