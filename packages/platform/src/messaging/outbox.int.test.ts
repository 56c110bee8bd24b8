import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, eventually, type TestDatabase } from '@stockflow/testing';
import type { Database } from '../db/database.ts';
import { createPostgresDatabase } from '../db/postgres.ts';
import { migrate, platformMigrations } from '../db/migrate.ts';
import { createLogger } from '../logger.ts';
import { startOutboxRelay } from './outbox.ts';
import type { OutgoingMessage, Transport } from './transport.ts';

const servicesUnavailable = inject('servicesUnavailable');

describe.skipIf(servicesUnavailable)('outbox relay', () => {
  let database: TestDatabase;
  let db: Database;
  beforeAll(async () => {
    database = await createTestDatabase('outbox_relay');
    db = createPostgresDatabase({ url: database.url, poolSize: 4, applicationName: 'outbox-test' });
    await migrate(db, [platformMigrations]);
  });
  afterAll(async () => {
    await db?.close();
    await database?.drop();
  });

  const recorder = () => {
    const published: OutgoingMessage[] = [];
    const transport = {
      publish: (messages: OutgoingMessage[]) => {
        published.push(...messages);
        return Promise.resolve();
      },
    } as Transport;
    return { published, transport };
  };

  it('deletes published rows past their retention, and only those', async () => {
    await db.query(`INSERT INTO outbox (exchange, routing_key, message_id, payload, published_at) VALUES
      ('orders', 'order.created', 'old', '{}', now() - interval '2 hours'),
      ('orders', 'order.created', 'recent', '{}', now())`);
    const { transport } = recorder();
    const relay = startOutboxRelay({
      db,
      transport,
      logger: createLogger({ name: 'test', level: 'silent' }),
      batchSize: 10,
      pollIntervalMs: 20,
      retentionMs: 3_600_000,
      cleanupEveryMs: 10,
    });
    try {
      await eventually(
        () => db.query<{ message_id: string }>('SELECT message_id FROM outbox ORDER BY id').then((r) => r.rows.map((x) => x.message_id)),
        (ids) => ids.length === 1,
      );
      expect((await db.query<{ message_id: string }>('SELECT message_id FROM outbox')).rows).toEqual([{ message_id: 'recent' }]);
    } finally {
      await relay.stop();
    }
  });

  it('shares the rows between two relays without publishing any twice', async () => {
    await db.query('DELETE FROM outbox');
    await db.query(`INSERT INTO outbox (exchange, routing_key, message_id, payload)
      SELECT 'orders', 'order.created', 'm-' || g, '{}' FROM generate_series(1, 2000) g`);
    const a = recorder();
    const b = recorder();
    const options = {
      db,
      logger: createLogger({ name: 'test', level: 'silent' }),
      batchSize: 50,
      pollIntervalMs: 10,
      retentionMs: 3_600_000,
    };
    const relays = [startOutboxRelay({ ...options, transport: a.transport }), startOutboxRelay({ ...options, transport: b.transport })];
    try {
      await eventually(
        () => db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL').then((r) => r.rows[0]?.n),
        (n) => n === 0,
      );
      const ids = [...a.published, ...b.published].map((m) => m.messageId);
      expect(ids).toHaveLength(2000);
      expect(new Set(ids).size).toBe(2000);
      expect(a.published.length).toBeGreaterThan(0);
      expect(b.published.length).toBeGreaterThan(0);
    } finally {
      await Promise.all(relays.map((r) => r.stop()));
    }
  });

  it('flushes what is left when drained after being stopped (graceful shutdown)', async () => {
    await db.query('DELETE FROM outbox');
    const { published, transport } = recorder();
    const relay = startOutboxRelay({
      db,
      transport,
      logger: createLogger({ name: 'test', level: 'silent' }),
      batchSize: 10,
      pollIntervalMs: 60_000,
      retentionMs: 3_600_000,
    });
    await relay.stop();
    await db.query(`INSERT INTO outbox (exchange, routing_key, message_id, payload)
      SELECT 'orders', 'order.created', 'late-' || g, '{}' FROM generate_series(1, 25) g`);
    await relay.drain();
    expect(published.map((m) => m.messageId)).toHaveLength(25);
    expect((await db.query('SELECT 1 FROM outbox WHERE published_at IS NULL')).rowCount).toBe(0);
  });
});
