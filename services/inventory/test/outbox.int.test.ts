import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { EXCHANGES, queues, ROUTING_KEYS } from '@stockflow/contracts';
import { createAmqpTransport, type Transport } from '@stockflow/messaging';
import { createLogger } from '@stockflow/observability';
import { createTestDatabase, eventually, rawAmqp, type TestDatabase } from '@stockflow/testing';
import { loadInventoryConfig } from '../src/config.ts';
import { seedCatalog } from '../src/db/catalog.ts';
import { startInventoryService } from '../src/service.ts';
import { purgeQueues, servicesUnavailable } from './harness.ts';

const logger = createLogger({ name: 'inventory', level: 'silent' });

describe.skipIf(servicesUnavailable)('outbox between commit and publish', () => {
  let database: TestDatabase;
  let amqp: Awaited<ReturnType<typeof rawAmqp>>;
  beforeAll(async () => {
    database = await createTestDatabase('inventory_outbox');
    amqp = await rawAmqp(inject('amqpUrl'));
    await purgeQueues(amqp);
  });
  afterAll(async () => {
    await amqp?.close();
    await database?.drop();
  });

  it('publishes answers committed while publishing failed once a later instance starts', async () => {
    const config = loadInventoryConfig({
      DATABASE_URL: database.url,
      AMQP_URL: inject('amqpUrl'),
      PORT: '0',
      OUTBOX_POLL_MS: '50',
      AUTH_DISABLED: 'true',
    });
    const real = await createAmqpTransport({
      url: inject('amqpUrl'),
      queues: Object.values(queues),
      queueType: config.AMQP_QUEUE_TYPE,
      connectionName: 'test',
      logger,
    });
    let consumed = 0;
    // Consumes for real but can never publish: what the outbox sees when the process dies right
    // after its commit, or the broker refuses publishes.
    const cannotPublish: Transport = {
      ...real,
      publish: () => Promise.reject(new Error('broker gone')),
      consume: (queue, options, handler) =>
        real.consume(queue, options, async (m) => {
          await handler(m);
          consumed += 1;
        }),
    };
    const first = await startInventoryService(config, logger, { transport: cannotPublish });
    const answers = await amqp.listen(EXCHANGES.inventory, 'stock.*');
    await seedCatalog(first.db, [{ sku: 'OUTBOX-1', name: 'Outbox', priceCents: null, initialStock: 5 }]);
    const { rows } = await first.db.query<{ id: number }>(`SELECT id FROM products WHERE sku = 'OUTBOX-1'`);
    const productId = rows[0]?.id;
    await amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCreated, {
      event: 'OrderCreated',
      order_id: 'ORD-OUTBOX',
      items: [{ product_id: productId, quantity: 2 }],
    });
    await eventually(
      () => Promise.resolve(consumed),
      (n) => n === 1,
    );
    const pending = await first.db.query('SELECT 1 FROM outbox');
    expect(pending.rowCount).toBe(1);
    expect(answers.received).toHaveLength(0);
    await first.close().catch(() => undefined);

    await real.close();
    const second = await startInventoryService(config, logger);
    try {
      const [answer] = await answers.waitFor(1);
      expect(answer?.routingKey).toBe('stock.reserved');
      expect((answer?.json as { order_id: string }).order_id).toBe('ORD-OUTBOX');
    } finally {
      await second.close();
    }
  });
});
