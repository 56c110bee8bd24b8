import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, eventually, type TestDatabase } from '@stockflow/testing';
import { createPostgresDatabase, migrate, type Database } from '@stockflow/db';
import { createLogger } from '@stockflow/observability';
import type { OutgoingMessage } from '@stockflow/contracts';
import { platformMigrations, startOutbox, type OutboxOptions } from './outbox.ts';
import { UnroutableError, type Transport } from './transport.ts';

const servicesUnavailable = inject('servicesUnavailable');

describe.skipIf(servicesUnavailable)('outbox', () => {
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
  beforeEach(async () => {
    await db.query('DELETE FROM outbox');
  });

  /** A transport that records what it publishes, failing the first `failures` publishes. */
  const recorder = (failures = 0) => {
    const published: OutgoingMessage[] = [];
    let failed = 0;
    const transport = {
      publish: (messages: OutgoingMessage[]) => {
        if (failed < failures) {
          failed += 1;
          return Promise.reject(new Error('broker gone'));
        }
        published.push(...messages);
        return Promise.resolve();
      },
    } as Transport;
    /** Resolves once `n` messages have been published (confirmed). */
    const untilPublished = (n: number) =>
      eventually(
        () => Promise.resolve(published.length),
        (count) => count === n,
      );
    return { published, transport, untilPublished };
  };
  const options = (transport: Transport, overrides: Partial<OutboxOptions> = {}): OutboxOptions => ({
    db,
    transport,
    logger: createLogger({ name: 'test', level: 'silent' }),
    batchSize: 50,
    pollIntervalMs: 60_000,
    ...overrides,
  });
  const message = (id: string): OutgoingMessage => ({ exchange: 'orders', routingKey: 'order.created', messageId: id, body: { id } });
  const remaining = () =>
    db.query<{ message_id: string }>('SELECT message_id FROM outbox ORDER BY id').then((r) => r.rows.map((x) => x.message_id));

  it('publishes the rows a transaction wrote as soon as it commits, in order, and deletes them once confirmed', async () => {
    const { published, transport } = recorder();
    // The poll would come only after a minute: what is published here went out after the commit.
    const outbox = startOutbox(options(transport));
    try {
      await db.transaction((tx) => outbox.enqueue(tx, ['a', 'b', 'c'].map(message)));
      await eventually(remaining, (ids) => ids.length === 0);
      expect(published.map((m) => m.messageId)).toEqual(['a', 'b', 'c']);
      expect(published[0]?.body).toEqual({ id: 'a' });
    } finally {
      await outbox.stop();
    }
  });

  it('neither keeps nor publishes the rows of a transaction that rolls back', async () => {
    const { published, transport } = recorder();
    const outbox = startOutbox(options(transport));
    try {
      await expect(
        db.transaction(async (tx) => {
          await outbox.enqueue(tx, [message('never')]);
          throw new Error('the change failed');
        }),
      ).rejects.toThrow('the change failed');
      await outbox.drain();
      expect(await remaining()).toEqual([]);
      expect(published).toEqual([]);
    } finally {
      await outbox.stop();
    }
  });

  it('deletes confirmed rows in the statement of the next insert, not in a commit of their own', async () => {
    const { transport, untilPublished } = recorder();
    // No sweep within the test: only the next transaction can have deleted them.
    const outbox = startOutbox(options(transport, { sweepDelayMs: 60_000 }));
    try {
      await db.transaction((tx) => outbox.enqueue(tx, [message('first')]));
      await untilPublished(1);
      expect(await remaining()).toEqual(['first']);
      // Left out of the backlog gauge: the broker has it.
      expect(outbox.publishedNotDeleted()).toHaveLength(1);
      await db.transaction((tx) => outbox.enqueue(tx, [message('second')]));
      await untilPublished(2);
      expect(await remaining()).toEqual(['second']);
    } finally {
      await outbox.stop();
    }
    expect(await remaining()).toEqual([]);
  });

  it('keeps confirmed rows for a later delete when the transaction that was to delete them rolls back', async () => {
    const { published, transport, untilPublished } = recorder();
    const outbox = startOutbox(options(transport, { sweepDelayMs: 60_000 }));
    try {
      await db.transaction((tx) => outbox.enqueue(tx, [message('kept')]));
      await untilPublished(1);
      await expect(
        db.transaction(async (tx) => {
          await outbox.enqueue(tx, [message('rolled-back')]);
          throw new Error('the change failed');
        }),
      ).rejects.toThrow('the change failed');
      expect(await remaining()).toEqual(['kept']);
      await db.transaction((tx) => outbox.enqueue(tx, [message('next')]));
      await untilPublished(2);
      expect(await remaining()).toEqual(['next']);
      expect(published.map((m) => m.messageId)).toEqual(['kept', 'next']);
    } finally {
      await outbox.stop();
    }
  });

  it('deletes confirmed rows by themselves when no transaction comes to take them', async () => {
    const { published, transport } = recorder();
    const outbox = startOutbox(options(transport, { sweepDelayMs: 20 }));
    try {
      await db.transaction((tx) => outbox.enqueue(tx, [message('alone')]));
      await eventually(remaining, (ids) => ids.length === 0);
      expect(published.map((m) => m.messageId)).toEqual(['alone']);
    } finally {
      await outbox.stop();
    }
  });

  it('keeps the rows when their publish fails, and the poll publishes them once the broker is back', async () => {
    const { published, transport } = recorder(1);
    const outbox = startOutbox(options(transport, { pollIntervalMs: 20 }));
    try {
      await db.transaction((tx) => outbox.enqueue(tx, [message('retried')]));
      await eventually(remaining, (ids) => ids.length === 0);
      expect(published.map((m) => m.messageId)).toEqual(['retried']);
      expect((await db.query('SELECT 1 FROM outbox')).rowCount).toBe(0);
    } finally {
      await outbox.stop();
    }
  });

  it('takes over rows whose claim ran out (the instance that wrote them died before publishing)', async () => {
    await db.query(`INSERT INTO outbox (exchange, routing_key, message_id, payload, claimed_until) VALUES
      ('orders', 'order.created', 'orphan', '{}', now() - interval '1 second'),
      ('orders', 'order.created', 'still-claimed', '{}', now() + interval '1 hour')`);
    const { published, transport } = recorder();
    const outbox = startOutbox(options(transport, { pollIntervalMs: 20 }));
    try {
      await eventually(remaining, (ids) => ids.length === 1);
      expect(await remaining()).toEqual(['still-claimed']);
      expect(published.map((m) => m.messageId)).toEqual(['orphan']);
    } finally {
      await outbox.stop();
    }
  });

  it('shares the rows between two relays without publishing any twice', async () => {
    await db.query(`INSERT INTO outbox (exchange, routing_key, message_id, payload)
      SELECT 'orders', 'order.created', 'm-' || g, '{}' FROM generate_series(1, 2000) g`);
    const a = recorder();
    const b = recorder();
    const outboxes = [a, b].map((r) => startOutbox(options(r.transport, { pollIntervalMs: 10 })));
    try {
      await eventually(remaining, (ids) => ids.length === 0);
      const ids = [...a.published, ...b.published].map((m) => m.messageId);
      expect(ids).toHaveLength(2000);
      expect(new Set(ids).size).toBe(2000);
      expect(a.published.length).toBeGreaterThan(0);
      expect(b.published.length).toBeGreaterThan(0);
    } finally {
      await Promise.all(outboxes.map((o) => o.stop()));
    }
  });

  it('flushes what is left when drained after being stopped (graceful shutdown)', async () => {
    const { published, transport } = recorder();
    const outbox = startOutbox(options(transport));
    await outbox.stop();
    await db.query(`INSERT INTO outbox (exchange, routing_key, message_id, payload)
      SELECT 'orders', 'order.created', 'late-' || g, '{}' FROM generate_series(1, 125) g`);
    await outbox.drain();
    expect(published.map((m) => m.messageId)).toHaveLength(125);
    expect(await remaining()).toEqual([]);
  });

  /** A broker with no queue for `order.missing`: it takes the rest of a publish and returns those. */
  const missingQueue = () => {
    const published: OutgoingMessage[] = [];
    let returned = 0;
    const transport = {
      publish: (messages: OutgoingMessage[]) => {
        const lost = messages.filter((m) => m.routingKey === 'order.missing');
        published.push(...messages.filter((m) => !lost.includes(m)));
        returned += lost.length;
        return lost.length > 0 ? Promise.reject(new UnroutableError(lost, '312 NO_ROUTE')) : Promise.resolve();
      },
    } as Transport;
    return { published, transport, returned: () => returned };
  };

  it('deletes the rows of a publish the broker took, and keeps only those it returned', async () => {
    const broker = missingQueue();
    const outbox = startOutbox(options(broker.transport));
    try {
      await db.transaction((tx) => outbox.enqueue(tx, [message('a'), { ...message('lost'), routingKey: 'order.missing' }, message('b')]));
      await eventually(remaining, (ids) => ids.length === 1);
      expect(await remaining()).toEqual(['lost']);
      expect(broker.published.map((m) => m.messageId)).toEqual(['a', 'b']);
      const { rows } = await db.query<{ last_error: string }>('SELECT last_error FROM outbox');
      expect(rows[0]?.last_error).toMatch(/reached no queue/);
    } finally {
      await outbox.stop();
    }
  });

  it('passes rows whose queue is missing to reach the rows behind them, and sends those again only after a pause', async () => {
    // More returned rows at the head than a poll takes, as after a queue was deleted under load.
    await db.query(`INSERT INTO outbox (exchange, routing_key, message_id, payload)
      SELECT 'orders', 'order.missing', 'lost-' || g, '{}' FROM generate_series(1, 120) g`);
    await db.query(`INSERT INTO outbox (exchange, routing_key, message_id, payload) VALUES ('orders', 'order.cancelled', 'behind', '{}')`);
    const broker = missingQueue();
    const outbox = startOutbox(options(broker.transport, { pollIntervalMs: 20 }));
    try {
      await eventually(
        () => Promise.resolve(broker.published.map((m) => m.messageId)),
        (ids) => ids.includes('behind'),
        5_000,
      );
      await eventually(remaining, (ids) => !ids.includes('behind'));
      // Each returned row was tried once: it waits out its pause instead of being sent every poll.
      await new Promise((r) => setTimeout(r, 1_000));
      expect(broker.returned()).toBe(120);
      expect(await remaining()).toHaveLength(120);
    } finally {
      await outbox.stop();
    }
  });
});
