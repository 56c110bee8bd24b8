import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ATTEMPTS_HEADER, DEAD_LETTER_REASON_HEADER, EXCHANGES, queues, ROUTING_KEYS } from '@stockflow/contracts';
import { createLogger } from '@stockflow/observability';
import { createPostgresDatabase, type Database } from '@stockflow/db';
import type { RunningService } from '@stockflow/runtime';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { createTestDatabase, eventually, graphqlClient, rawAmqp, repoRoot, type RawAmqp, type TestDatabase } from '@stockflow/testing';
import { loadInventoryConfig } from '../src/config.ts';
import { seedCatalog } from '../src/db/catalog.ts';
import { startInventoryService } from '../src/service.ts';
import { purgeQueues, servicesUnavailable } from './harness.ts';

/**
 * A database whose statements fail (not as an outage: as a bug or bad data would) whenever they
 * concern an order id containing a marker, `failures` times at most.
 */
function flakyDatabase(real: Database, marker: string, failures: number) {
  const seen = { attempts: 0, healed: false };
  const db: Database = {
    ...real,
    transaction: (fn) =>
      real.transaction((tx) =>
        fn({
          ...tx,
          query: (sql, params) => {
            if (JSON.stringify(params ?? []).includes(marker) && seen.attempts < failures && !seen.healed) {
              seen.attempts += 1;
              return Promise.reject(new Error(`injected failure #${seen.attempts}`));
            }
            return tx.query(sql, params);
          },
        }),
      ),
  };
  return { db, seen };
}

describe.skipIf(servicesUnavailable)('retries with increasing delay, parking, and replay', () => {
  let database: TestDatabase;
  let real: Database;
  let amqp: RawAmqp;
  let service: RunningService | undefined;
  beforeAll(async () => {
    database = await createTestDatabase('inventory_retry');
    real = createPostgresDatabase({ url: database.url, poolSize: 4, applicationName: 'retry-test' });
    amqp = await rawAmqp(inject('amqpUrl'));
    await purgeQueues(amqp);
  });
  afterAll(async () => {
    await service?.close();
    await real?.close();
    await amqp?.close();
    await database?.drop();
  });

  const start = async (marker: string, failures: number, maxAttempts = 3) => {
    await service?.close();
    const flaky = flakyDatabase(real, marker, failures);
    const config = loadInventoryConfig({
      AMQP_URL: inject('amqpUrl'),
      PORT: '0',
      OUTBOX_POLL_MS: '50',
      RETRY_MAX_ATTEMPTS: String(maxAttempts),
      AUTH_DISABLED: 'true',
    });
    service = await startInventoryService(config, createLogger({ name: 'inventory', level: 'silent' }), { db: flaky.db });
    await seedCatalog(real, [{ sku: `RETRY-${marker}`, name: 'r', priceCents: null, initialStock: 100 }]);
    const { rows } = await real.query<{ id: number }>(`SELECT id FROM products WHERE sku = 'RETRY-${marker}'`);
    return { seen: flaky.seen, productId: rows[0]?.id as number, gql: graphqlClient(`http://127.0.0.1:${service.port}/graphql`) };
  };
  const order = (orderId: string, productId: number) =>
    amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCreated, {
      event: 'OrderCreated',
      order_id: orderId,
      items: [{ product_id: productId, quantity: 1 }],
    });

  it('retries a failing message after a delay and reserves it once the failure passes, without holding up the next', async () => {
    const { seen, productId } = await start('FLAKY', 2);
    const answers = await amqp.listen(EXCHANGES.inventory, 'stock.*');
    const sentAt = Date.now();
    await order('FLAKY-1', productId);
    await order('STEADY-1', productId);
    const list = await eventually(
      () => Promise.resolve(answers.received.map((m) => (m.json as { order_id: string }).order_id)),
      (ids) => ids.includes('FLAKY-1'),
      20_000,
    );
    expect(list.indexOf('STEADY-1')).toBeLessThan(list.indexOf('FLAKY-1'));
    expect(seen.attempts).toBe(2);
    // It waited in the first retry queue (1 s) at least once.
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(1_000);
    expect(answers.received.find((m) => (m.json as { order_id: string }).order_id === 'FLAKY-1')?.routingKey).toBe('stock.reserved');
  });

  it('parks a message that keeps failing, with the number of attempts and the last error', async () => {
    const { productId } = await start('POISON', 1_000);
    const answers = await amqp.listen(EXCHANGES.inventory, 'stock.*');
    const sentAt = Date.now();
    await order('POISON-1', productId);
    await order('NEXT-1', productId);
    await eventually(() => Promise.resolve(answers.received.some((m) => (m.json as { order_id: string }).order_id === 'NEXT-1')), Boolean);
    const parked = await eventually(
      () => amqp.drainQueue(queues.orderCreatedInventory.deadLetterQueue),
      (list) => list.length === 1,
      20_000,
    );
    expect((parked[0]?.json as { order_id: string }).order_id).toBe('POISON-1');
    expect(parked[0]?.headers[DEAD_LETTER_REASON_HEADER]).toMatch(/^handler failed 3 times; last error: injected failure #\d+$/);
    // Waited 1 s, then 5 s, before the third and last attempt.
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(6_000);
    expect(parked[0]?.headers[ATTEMPTS_HEADER]).toBe('2');
    expect(answers.received.some((m) => (m.json as { order_id: string }).order_id === 'POISON-1')).toBe(false);
  });

  it('lists a parked message with its reason (GraphQL and CLI) and replays it once the cause is fixed', async () => {
    const { seen, productId, gql } = await start('BROKEN', 1_000, 2);
    const answers = await amqp.listen(EXCHANGES.inventory, 'stock.*');
    await amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCreated, {
      event: 'OrderCreated',
      order_id: 'BROKEN-1',
      items: [{ product_id: productId, quantity: 2 }],
      event_id: 'evt-broken-1',
    });
    type Parked = { deadLetters: { id: string; reason: string; body: string; routingKey: string }[] };
    const listed = await eventually(
      () => gql.data<Parked>('{ deadLetters(queue: "order.created.inventory") { id reason body routingKey } }'),
      (d) => d.deadLetters.length === 1,
      20_000,
    );
    expect(listed.deadLetters[0]).toMatchObject({
      reason: expect.stringMatching(/^handler failed 2 times/) as unknown,
      routingKey: 'order.created',
    });
    const id = listed.deadLetters[0]?.id as string;
    // Listing is a look, not a move: it is still there, and the CLI sees it too.
    const cli = spawnSync(
      process.execPath,
      ['--import', 'tsx', path.join(repoRoot, 'tools/src/dlq.ts'), 'list', 'order.created.inventory'],
      {
        env: { ...process.env, AMQP_URL: inject('amqpUrl') },
        encoding: 'utf8',
      },
    );
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.stdout).toContain('1 parked in order.created.inventory.dlq');
    expect(cli.stdout).toContain(id);

    const wrongQueue = await gql.request('{ deadLetters(queue: "stock.orders") { id } }');
    expect(wrongQueue.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');

    seen.healed = true;
    const replayed = await gql.data<{ replayDeadLetters: number }>(
      `mutation { replayDeadLetters(queue: "order.created.inventory", ids: ["${id}"]) }`,
    );
    expect(replayed.replayDeadLetters).toBe(1);
    const [answer] = await answers.waitFor(1, 20_000);
    expect(answer?.routingKey).toBe('stock.reserved');
    expect((answer?.json as { order_id: string }).order_id).toBe('BROKEN-1');
    expect((await gql.data<Parked>('{ deadLetters(queue: "order.created.inventory") { id } }')).deadLetters).toEqual([]);
  });
});
