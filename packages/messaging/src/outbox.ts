import path from 'node:path';
import { createBatcher, type CircuitBreaker } from '@stockflow/platform';
import { migrationSource, type Database, type Transaction } from '@stockflow/db';
import { tally, withTraceparent, type Logger, type Metrics, type Tracing } from '@stockflow/observability';
import type { OutgoingMessage } from '@stockflow/contracts';
import { UnroutableError, type Transport } from './transport.ts';

/**
 * The outbox's table, which every service has. Its scope stays `platform`, the name the databases
 * already record its migrations under.
 */
export const platformMigrations = migrationSource('platform', path.join(import.meta.dirname, 'migrations', 'outbox'));

export interface OutboxOptions {
  db: Database;
  transport: Transport;
  logger: Logger;
  /** Most rows published in one go (by the poll, or right after commits). */
  batchSize: number;
  /** How often the relay looks for rows nobody is publishing (their claim expired or was given up). */
  pollIntervalMs: number;
  /**
   * How long confirmed rows wait for a transaction of this instance to delete them before a
   * statement of their own does (default 100 ms).
   */
  sweepDelayMs?: number;
  /** The broker's circuit breaker: while it is open nothing is tried and the relay waits. */
  breaker?: CircuitBreaker;
  metrics?: Metrics;
  tracing?: Tracing | undefined;
}

export interface OutboxWriter {
  /**
   * Writes the events in the caller's transaction, in one statement. Once the transaction
   * commits they are published at once; if that fails, the relay's poll publishes them later.
   */
  enqueue(tx: Transaction, messages: OutgoingMessage[]): Promise<void>;
}

export interface Outbox extends OutboxWriter {
  /**
   * Rows this instance has published, confirmed by the broker, and not deleted yet: the backlog
   * gauge leaves them out (another instance's such rows count until it deletes them, within its
   * sweep delay).
   */
  publishedNotDeleted(): readonly number[];
  /** Publishes everything still pending; used at shutdown, after stop(). */
  drain(): Promise<void>;
  /** Stops the poll and waits for the publishes under way. */
  stop(): Promise<void>;
}

interface OutboxRow {
  id: number;
  message: OutgoingMessage;
}

interface StoredRow {
  id: number;
  exchange: string;
  routing_key: string;
  message_id: string;
  payload: unknown;
  headers: Record<string, string> | null;
}

/** A publish not confirmed within this long counts as failed (the broker is unreachable). */
export const PUBLISH_TIMEOUT_MS = 5_000;
/**
 * How long the instance that wrote (or polled) a row holds it before another may take it: longer
 * than any publish may take, short enough that the rows of an instance killed mid-publish are
 * picked up soon by another or by its restart.
 */
const CLAIM_SECONDS = 10;
/** How long an event the broker returned (its queue is missing) waits before it is sent again. */
const UNROUTABLE_RETRY_SECONDS = 5;
/** Publishes started right after commits, running at once; later commits join the next one. */
const PUBLISHES_IN_FLIGHT = 2;

export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  // Once the timeout has won, the publish may still fail later (e.g. "channel acquisition timed
  // out"); nobody awaits it any more, and an unhandled rejection would end the process.
  promise.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The transactional outbox. A row is written claimed by the instance whose transaction wrote it,
 * published by that instance as soon as the transaction commits, confirmed by the broker, then
 * deleted: no poll stands between a commit and its event, and the table holds only the backlog.
 * A row whose publish failed has its claim given up; one whose instance died has its claim run
 * out. The relay's poll takes such rows (FOR UPDATE SKIP LOCKED, so several instances share them)
 * and publishes them. A crash between the confirm and the delete publishes a row twice, which
 * idempotent consumers absorb; nothing is deleted before the broker confirmed it.
 *
 * Confirmed rows are deleted by the next transaction that writes to the outbox, in the statement
 * of its insert, and only when none comes soon (sweepDelayMs) by a statement of their own: a
 * delete of its own was a round trip and a commit (a WAL flush) for every publish, as many as the
 * transactions that wrote the rows. Until then they stay claimed, so no relay takes them.
 */
export function startOutbox(options: OutboxOptions): Outbox {
  const { db, transport, logger } = options;
  let stopped = false;
  let signalStop: () => void = () => undefined;
  const stopSignal = new Promise<void>((resolve) => (signalStop = resolve));
  let wakeUp: (() => void) | undefined;
  let woken = false;

  const wake = () => {
    if (wakeUp) wakeUp();
    else woken = true;
  };

  const count = (rows: OutboxRow[], outcome: 'confirmed' | 'failed' | 'unroutable') => {
    if (!options.metrics) return;
    for (const [key, n] of tally(rows, (r) => r.message.routingKey))
      options.metrics.messagesPublished.inc({ routing_key: key, outcome }, n);
  };

  /** Publishes claimed rows with confirms and deletes them; on failure gives their claim up and throws. */
  const publishRows = async (rows: OutboxRow[]) => {
    const ids = rows.map((r) => r.id);
    const traced = options.tracing?.publishing(
      rows.map((r) => r.message),
      transport.peer,
    );
    // Untraced, an event nothing caused still takes a trace here, for its consumers' log lines to share.
    const messages = traced?.messages ?? rows.map((r) => withTraceparent(r.message));
    const publish = () =>
      withTimeout(transport.publish(messages), PUBLISH_TIMEOUT_MS, `no confirm from the broker within ${PUBLISH_TIMEOUT_MS} ms`);
    try {
      await (options.breaker ? options.breaker.run(publish) : publish());
    } catch (error) {
      // Unroutable: the broker took the others; only the returned ones stay for another try.
      const returned = error instanceof UnroutableError ? new Set(error.messages) : undefined;
      traced?.failed(error, returned);
      const kept = returned ? rows.filter((_, i) => returned.has(messages[i] as OutgoingMessage)) : rows;
      if (returned) {
        const delivered = rows.filter((_, i) => !returned.has(messages[i] as OutgoingMessage));
        count(delivered, 'confirmed');
        forDeletion(delivered.map((r) => r.id));
        logger.error(
          { err: error, routingKeys: [...new Set(kept.map((r) => r.message.routingKey))], count: kept.length },
          'events reached no queue (is a consumer queue missing?); kept in the outbox and tried again',
        );
      }
      count(kept, returned ? 'unroutable' : 'failed');
      // An unreachable broker: the claim is given up, for the relay to try again. A missing queue:
      // the rows wait out a claim of their own, so the relay's poll (oldest first) passes them
      // and reaches the rows behind them, and a missing queue is not asked every poll.
      await db
        .query(
          `UPDATE outbox SET claimed_until = CASE WHEN $3::int > 0 THEN now() + make_interval(secs => $3::int) END, last_error = $2
           WHERE id = ANY($1::bigint[])`,
          [kept.map((r) => r.id), String(error).slice(0, 500), returned ? UNROUTABLE_RETRY_SECONDS : 0],
        )
        .catch(() => undefined);
      throw error;
    }
    traced?.confirmed();
    count(rows, 'confirmed');
    forDeletion(ids);
  };

  let confirmed: number[] = [];
  let sweepTimer: NodeJS.Timeout | undefined;
  let sweeping: Promise<void> | undefined;
  /** Deletes the confirmed rows no transaction took; on failure they wait for the next try. */
  const sweep = async () => {
    clearTimeout(sweepTimer);
    sweepTimer = undefined;
    if (confirmed.length === 0) return;
    const ids = confirmed;
    confirmed = [];
    try {
      await db.query('DELETE FROM outbox WHERE id = ANY($1::bigint[])', [ids]);
    } catch (error) {
      // Once stopped there is no next try: the rows' claims run out and they are published again
      // (a duplicate consumers absorb) by whichever instance polls next.
      logger.warn({ err: error, count: ids.length }, 'deleting published outbox rows failed');
      if (!stopped) forDeletion(ids, options.pollIntervalMs);
    }
  };
  function forDeletion(ids: number[], delayMs = options.sweepDelayMs ?? 100) {
    confirmed = confirmed.concat(ids);
    sweepTimer ??= setTimeout(() => {
      sweeping = sweep().finally(() => (sweeping = undefined));
    }, delayMs);
  }
  /** Deletes every confirmed row now (shutdown), after a sweep already under way. */
  const sweepNow = async () => {
    await sweeping;
    await sweep();
  };

  // Rows committed by concurrent transactions share a publish.
  const publisher = createBatcher<OutboxRow, undefined>({
    maxBatch: options.batchSize,
    maxInFlight: PUBLISHES_IN_FLIGHT,
    run: async (rows) => {
      try {
        await publishRows(rows);
      } catch (error) {
        // Returned rows wait out their own claim; waking the relay for them would only send them again.
        if (!(error instanceof UnroutableError)) {
          logger.warn({ err: error, count: rows.length }, 'publishing after commit failed; the outbox relay will retry');
          wake();
        }
      }
      return rows.map(() => undefined);
    },
  });
  const publishing = new Set<Promise<undefined>>();

  /** Claims a batch of rows nobody is publishing, publishes them; returns how many. */
  const pollOnce = async (): Promise<number> => {
    // Claimed in one short statement and published outside any transaction: a slow broker (or, in
    // the embedded mode, a consumer that commits before the publish returns) never holds a
    // database transaction open.
    const { rows } = await db.query<StoredRow>(
      `UPDATE outbox SET claimed_until = now() + interval '${CLAIM_SECONDS} seconds', attempts = attempts + 1
       WHERE id IN (
         SELECT id FROM outbox
         WHERE claimed_until IS NULL OR claimed_until < now()
         ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
       RETURNING id, exchange, routing_key, message_id, payload, headers`,
      [options.batchSize],
    );
    if (rows.length === 0) return 0;
    rows.sort((a, b) => a.id - b.id);
    await publishRows(
      rows.map((r) => ({
        id: r.id,
        message: {
          exchange: r.exchange,
          routingKey: r.routing_key,
          messageId: r.message_id,
          body: r.payload,
          headers: r.headers ?? undefined,
        },
      })),
    );
    return rows.length;
  };

  const waitForWork = (ms: number) =>
    new Promise<void>((resolve) => {
      if (woken || stopped) {
        woken = false;
        resolve();
        return;
      }
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        wakeUp = undefined;
        woken = false;
        resolve();
      }
      wakeUp = done;
    });

  let failures = 0;
  /** Publishes until nothing is left to take (or, for the loop, until stopped); false if a publish failed. */
  const drainOnce = async (untilStopped: boolean): Promise<boolean> => {
    try {
      while (!(untilStopped && stopped) && (await pollOnce()) > 0) {
        /* keep going while there is work */
      }
      failures = 0;
      return true;
    } catch (error) {
      failures += 1;
      logger.warn({ err: error, failures }, 'outbox publish failed; will retry');
      return false;
    }
  };

  const loop = (async () => {
    while (!stopped) {
      if (options.breaker) await Promise.race([options.breaker.waitUntilCallable(), stopSignal]);
      if (stopped) break;
      const ok = await drainOnce(true);
      const backoff = ok ? options.pollIntervalMs : Math.min(options.pollIntervalMs * 2 ** failures, 5_000);
      await waitForWork(backoff);
    }
  })();

  return {
    async enqueue(tx, messages) {
      if (messages.length === 0) return;
      const rows = messages.map((m) => ({
        exchange: m.exchange,
        routing_key: m.routingKey,
        message_id: m.messageId,
        payload: m.body,
        headers: m.headers ?? null,
      }));
      // Rows confirmed earlier go with this insert; if this transaction rolls back, they wait again.
      const published = confirmed;
      confirmed = [];
      if (published.length > 0) tx.afterRollback(() => forDeletion(published));
      const { rows: inserted } = await tx.query<{ id: number }>(
        `WITH published AS (DELETE FROM outbox WHERE id = ANY($2::bigint[]))
         INSERT INTO outbox (exchange, routing_key, message_id, payload, headers, claimed_until, attempts)
         SELECT exchange, routing_key, message_id, payload, headers, now() + interval '${CLAIM_SECONDS} seconds', 1
         FROM json_to_recordset($1::json) AS x(exchange text, routing_key text, message_id text, payload json, headers json)
         RETURNING id`,
        [JSON.stringify(rows), published],
      );
      // Identities are drawn in the order the rows are inserted, which is the order given.
      const ids = inserted.map((r) => r.id).sort((a, b) => a - b);
      tx.afterCommit(() => {
        messages.forEach((message, i) => {
          const published = publisher.submit({ id: ids[i] as number, message });
          publishing.add(published);
          void published.finally(() => publishing.delete(published));
        });
      });
    },
    publishedNotDeleted: () => confirmed,
    async drain() {
      await Promise.allSettled(publishing);
      await drainOnce(false);
      await sweepNow();
    },
    async stop() {
      stopped = true;
      signalStop();
      wakeUp?.();
      await loop;
      await Promise.allSettled(publishing);
      await sweepNow();
    },
  };
}
