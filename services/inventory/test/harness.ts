import { inject } from 'vitest';
import { createLogger } from '@stockflow/observability';
import type { RunningService } from '@stockflow/runtime';
import { EXCHANGES, queues } from '@stockflow/contracts';
import {
  createTestDatabase,
  createTestVhost,
  eventually,
  graphqlClient,
  rawAmqp,
  type ReceivedMessage,
  type TestDatabase,
} from '@stockflow/testing';
import { loadInventoryConfig } from '../src/config.ts';
import { startInventoryService } from '../src/service.ts';

export const servicesUnavailable = inject('servicesUnavailable');

export interface InventoryHarness {
  service: RunningService;
  database: TestDatabase;
  gql: ReturnType<typeof graphqlClient>;
  amqp: Awaited<ReturnType<typeof rawAmqp>>;
  createProduct(sku: string, initialStock: number): Promise<number>;
  stock(productId: number): Promise<{ availableStock: number; reservedStock: number }>;
  /** Every answer published on `inventory` since the harness started. */
  answers: ReceivedMessage[];
  /** Waits until `n` answers for the order have arrived and returns them. */
  answersFor(orderId: string, n?: number): Promise<ReceivedMessage[]>;
  close(): Promise<void>;
}

/** Purges the contract's queues so a file never sees what an earlier file left behind. */
export async function purgeQueues(amqp: InventoryHarness['amqp']) {
  for (const q of Object.values(queues)) {
    await amqp.connection.queuePurge(q.queue).catch(() => undefined);
    await amqp.connection.queuePurge(q.deadLetterQueue).catch(() => undefined);
  }
}

/**
 * The Inventory Service in this process, on a database and a vhost of its own: its answers come
 * from it alone. On the run's shared vhost, any consumer of the contract's queues that an earlier
 * file left running (a process still stopping) could take an OrderCreated and answer it from a
 * database that knows none of these products.
 */
export async function startInventory(env: Record<string, string> = {}): Promise<InventoryHarness> {
  const database = await createTestDatabase('inventory_test');
  const vhost = await createTestVhost();
  const amqpUrl = vhost.url;
  const amqp = await rawAmqp(amqpUrl);
  const config = loadInventoryConfig({
    DATABASE_URL: database.url,
    AMQP_URL: amqpUrl,
    PORT: '0',
    HOST: '127.0.0.1',
    OUTBOX_POLL_MS: '100',
    // Authentication has tests of its own (auth.e2e); these exercise everything else.
    AUTH_DISABLED: 'true',
    ...env,
  });
  const service = await startInventoryService(config, createLogger({ name: 'inventory', level: process.env.TEST_LOG_LEVEL ?? 'silent' }));
  const gql = graphqlClient(`http://127.0.0.1:${service.port}/graphql`);
  const listener = await amqp.listen(EXCHANGES.inventory, 'stock.*');
  const forOrder = (orderId: string) =>
    listener.received.filter((m) => (m.json as { order_id?: string } | undefined)?.order_id === orderId);
  return {
    service,
    database,
    gql,
    amqp,
    answers: listener.received,
    answersFor: (orderId, n = 1) =>
      eventually(
        () => Promise.resolve(forOrder(orderId)),
        (list) => list.length >= n,
      ),
    async stock(productId) {
      const data = await gql.data<{ product: { availableStock: number; reservedStock: number } }>(
        `{ product(id: "${productId}") { availableStock reservedStock } }`,
      );
      return data.product;
    },
    async createProduct(sku, initialStock) {
      const data = await gql.data<{ createProduct: { id: string } }>(
        'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }',
        { input: { sku, name: `Product ${sku}`, priceCents: 999, initialStock } },
      );
      return Number(data.createProduct.id);
    },
    async close() {
      await service.close();
      await amqp.close();
      await database.drop();
      await vhost.remove();
    },
  };
}
