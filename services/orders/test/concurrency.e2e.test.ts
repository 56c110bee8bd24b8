import pg from 'pg';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { queues } from '@stockflow/contracts';
import { createLogger } from '@stockflow/observability';
import type { RunningService } from '@stockflow/runtime';
import { createTestDatabase, eventually, graphqlClient, rawAmqp, type GraphqlClient, type TestDatabase } from '@stockflow/testing';
import { loadOrdersConfig } from '../src/config.ts';
import { startOrdersService } from '../src/service.ts';
import { serviceEnv } from './services.ts';

const servicesUnavailable = inject('servicesUnavailable');
const logger = createLogger({ name: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });

describe.skipIf(servicesUnavailable)('A command meeting an order another transaction is moving, on PostgreSQL', () => {
  const amqpUrl = inject('amqpUrl');
  let db: TestDatabase;
  let service: RunningService | undefined;
  let gql: GraphqlClient;

  beforeEach(async () => {
    db = await createTestDatabase('orders_concurrency');
    // Payments off: a CONFIRMED order may be fulfilled directly, so the move it waits for decides.
    service = await startOrdersService(loadOrdersConfig({ ...serviceEnv(db, amqpUrl), PAYMENT_HOLD_SECONDS: '0' }), logger);
    gql = graphqlClient(`http://127.0.0.1:${service.port}/graphql`);
  });
  afterEach(async () => {
    gql.close();
    await service?.close();
    // No Inventory Service answers here: the OrderCreated it published must not reach another test's.
    const amqp = await rawAmqp(amqpUrl);
    for (const q of Object.values(queues)) await amqp.connection.queuePurge(q.queue).catch(() => undefined);
    await amqp.close();
    await db.drop();
  });

  it('waits for the order row another transaction holds while it confirms the order, and fulfils it as committed', async () => {
    const { id } = (
      await gql.data<{ createOrder: { id: string } }>('mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }', {
        input: { customerId: 'shopper', items: [{ productId: '1', quantity: 1 }] },
      })
    ).createOrder;
    const mover = new pg.Client({ connectionString: db.url });
    const watcher = new pg.Client({ connectionString: db.url });
    await mover.connect();
    await watcher.connect();
    try {
      // Another transaction (Inventory's answer, as another instance writes it) holds the order's
      // row while it moves it PENDING -> CONFIRMED, and has not committed yet.
      await mover.query('BEGIN');
      await mover.query('SELECT id FROM orders WHERE id = $1 FOR UPDATE', [id]);
      await mover.query(`UPDATE orders SET status = 'CONFIRMED', updated_at = now() WHERE id = $1`, [id]);

      let settled = false;
      const fulfilling = gql
        .request<{ fulfillOrder: { status: string } }>('mutation($id: ID!) { fulfillOrder(id: $id) { status } }', { id })
        .finally(() => {
          settled = true;
        });
      // The fulfilment is waiting on the row (or, were it not to wait, has already answered).
      await eventually(
        async () =>
          settled ||
          (
            await watcher.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM pg_stat_activity
               WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FROM orders WHERE id = $1 FOR UPDATE%'`,
            )
          ).rows[0]?.n === 1,
        Boolean,
      );
      await mover.query('COMMIT');

      const answered = await fulfilling;
      expect(answered.errors).toBeUndefined();
      expect(answered.data).toEqual({ fulfillOrder: { status: 'FULFILLED' } });
      expect((await mover.query<{ status: string }>('SELECT status FROM orders WHERE id = $1', [id])).rows).toEqual([
        { status: 'FULFILLED' },
      ]);
    } finally {
      await mover.query('ROLLBACK').catch(() => undefined);
      await mover.end();
      await watcher.end();
    }
  });
});
