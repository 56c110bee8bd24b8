import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { EXCHANGES, queues, ROUTING_KEYS } from '@stockflow/contracts';
import {
  createTestDatabase,
  eventually,
  graphqlClient,
  rawAmqp,
  startServiceProcess,
  startTcpProxy,
  testServers,
  viaProxy,
  type RawAmqp,
  type ServiceProcess,
  type TestDatabase,
} from '@stockflow/testing';
import { purgeQueues, servicesUnavailable } from './harness.ts';

const ORDERS = 100;
const SHUTDOWN_TIMEOUT_MS = 2_000;

describe.skipIf(servicesUnavailable)('Inventory Service stopped with SIGTERM while its database is down', { timeout: 120_000 }, () => {
  let database: TestDatabase;
  let amqp: RawAmqp;
  let proxy: Awaited<ReturnType<typeof startTcpProxy>>;
  let inventory: ServiceProcess | undefined;

  beforeAll(async () => {
    database = await createTestDatabase('inventory_shutdown');
    amqp = await rawAmqp(inject('amqpUrl'));
    await purgeQueues(amqp);
    const postgres = new URL(testServers.postgresAdminUrl);
    proxy = await startTcpProxy({ host: postgres.hostname, port: Number(postgres.port || 5432) });
  });
  afterAll(async () => {
    await inventory?.stop('SIGKILL');
    // The test leaves its messages in the shared queue on purpose; the next file's inventory
    // would decide them against its own database.
    if (amqp) await purgeQueues(amqp);
    await proxy?.close();
    await amqp?.close();
    await database?.drop();
  });

  it('hands the batch it holds back to the queue and exits 0 within SHUTDOWN_TIMEOUT_MS', async () => {
    inventory = await startServiceProcess('inventory', {
      DATABASE_URL: viaProxy(database.url, proxy.port),
      AMQP_URL: inject('amqpUrl'),
      PORT: '0',
      HOST: '127.0.0.1',
      CONSUMER_PREFETCH: '50',
      CONSUMER_BATCH_SIZE: '20',
      AUTH_DISABLED: 'true',
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
    });
    const product = (
      await graphqlClient(`http://127.0.0.1:${inventory.port}/graphql`).data<{ createProduct: { id: string } }>(
        'mutation { createProduct(input: {sku: "P", name: "P", initialStock: 1000}) { id } }',
      )
    ).createProduct.id;
    proxy.cut();
    for (let i = 0; i < ORDERS; i += 1) {
      await amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCreated, {
        event: 'OrderCreated',
        order_id: `D-${i}`,
        items: [{ product_id: Number(product), quantity: 1 }],
      });
    }
    const running = inventory;
    const output = () => running.output();
    await eventually(
      () => Promise.resolve(output()),
      (log) => log.includes('holding the batch until it is back'),
    );

    const exited = inventory.stop('SIGTERM');
    // A generous margin: what is checked is that it exits at all while it holds a batch.
    const code = await Promise.race([
      exited,
      new Promise((resolve) => setTimeout(() => resolve('still running'), SHUTDOWN_TIMEOUT_MS + 15_000)),
    ]);
    expect(code, output()).toBe(0);
    expect(output()).toMatch(/handing the batch back to the broker/);

    // Nothing decided, nothing lost: every order waits in the queue for the next instance.
    proxy.restore();
    const sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
    expect((await sql.query('SELECT order_id FROM order_decisions')).rows).toEqual([]);
    await sql.end();
    const waiting = () =>
      amqp.connection.queueDeclare({ queue: queues.orderCreatedInventory.queue, passive: true }).then((r) => r.messageCount);
    expect(await eventually(waiting, (n) => n === ORDERS).catch(waiting)).toBe(ORDERS);
  });
});
