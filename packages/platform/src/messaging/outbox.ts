import type { Database, Queryable } from '../db/database.ts';
import type { CircuitBreaker } from '../breaker.ts';
import type { Logger } from '../logger.ts';
import type { OutgoingMessage, Transport } from './transport.ts';

/** Writes events to the outbox inside the caller's transaction, in one statement. */
export async function enqueueOutbox(tx: Queryable, messages: OutgoingMessage[]): Promise<void> {
  if (messages.length === 0) return;
  const rows = messages.map((m) => ({
    exchange: m.exchange,
    routing_key: m.routingKey,
    message_id: m.messageId,
    payload: m.body,
    headers: m.headers ?? null,
  }));
  await tx.query(
    `INSERT INTO outbox (exchange, routing_key, message_id, payload, headers)
     SELECT exchange, routing_key, message_id, payload, headers
     FROM json_to_recordset($1::json) AS x(exchange text, routing_key text, message_id text, payload json, headers json)`,
    [JSON.stringify(rows)],
  );
}

export interface OutboxRelayOptions {
  db: Database;
  transport: Transport;
  logger: Logger;
  batchSize: number;
  pollIntervalMs: number;
  /** Published rows older than this are deleted... */
  retentionMs: number;
  /** ...this often (default every minute). */
  cleanupEveryMs?: number;
  /** The broker's circuit breaker: while it is open the relay waits instead of retrying. */
  breaker?: CircuitBreaker;
}

export interface OutboxRelay {
  /** Publish now rather than at the next poll (called after a commit that wrote to the outbox). */
  wake(): void;
  /** Publishes everything pending; resolves when the outbox is empty or publishing fails. */
  drain(): Promise<void>;
  stop(): Promise<void>;
}

interface OutboxRow {
  id: number;
  exchange: string;
  routing_key: string;
  message_id: string;
  payload: unknown;
  headers: Record<string, string> | null;
}

/** A publish not confirmed within this long counts as failed (the broker is unreachable). */
const PUBLISH_TIMEOUT_MS = 5_000;
/**
 * How long a relay instance holds the rows it is publishing before another may take them: longer
 * than any publish may take, short enough that the rows of an instance killed mid-publish are
 * picked up soon by another or by its restart.
 */
const CLAIM_SECONDS = 10;

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
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
 * Publishes outbox rows with confirms and marks them published. Rows are claimed with
 * FOR UPDATE SKIP LOCKED and a time-limited claim, so several instances share the work without
 * publishing a row twice in the normal case; a crash between confirm and marking republishes,
 * which idempotent consumers absorb. Nothing is marked published before the broker confirmed it.
 */
export function startOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { db, transport, logger } = options;
  let stopped = false;
  let signalStop: () => void = () => undefined;
  const stopSignal = new Promise<void>((resolve) => (signalStop = resolve));
  let wakeUp: (() => void) | undefined;
  let woken = false;
  let lastCleanup = 0;

  const publishBatch = async (): Promise<number> => {
    // Claimed in one short statement and published outside any transaction: a slow broker (or, in
    // the embedded mode, a consumer that commits before the publish returns) never holds a
    // database transaction open.
    const { rows } = await db.query<OutboxRow>(
      `UPDATE outbox SET claimed_until = now() + interval '${CLAIM_SECONDS} seconds', attempts = attempts + 1
       WHERE id IN (
         SELECT id FROM outbox
         WHERE published_at IS NULL AND (claimed_until IS NULL OR claimed_until < now())
         ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
       RETURNING id, exchange, routing_key, message_id, payload, headers`,
      [options.batchSize],
    );
    if (rows.length === 0) return 0;
    rows.sort((a, b) => a.id - b.id);
    const ids = rows.map((r) => r.id);
    try {
      const publish = () =>
        withTimeout(
          transport.publish(
            rows.map((r) => ({
              exchange: r.exchange,
              routingKey: r.routing_key,
              messageId: r.message_id,
              body: r.payload,
              headers: r.headers ?? undefined,
            })),
          ),
          PUBLISH_TIMEOUT_MS,
          `no confirm from the broker within ${PUBLISH_TIMEOUT_MS} ms`,
        );
      await (options.breaker ? options.breaker.run(publish) : publish());
    } catch (error) {
      await db
        .query('UPDATE outbox SET claimed_until = NULL, last_error = $2 WHERE id = ANY($1::bigint[])', [ids, String(error).slice(0, 500)])
        .catch(() => undefined);
      throw error;
    }
    await db.query('UPDATE outbox SET published_at = now(), claimed_until = NULL WHERE id = ANY($1::bigint[])', [ids]);
    return rows.length;
  };

  const cleanup = async () => {
    if (Date.now() - lastCleanup < (options.cleanupEveryMs ?? 60_000)) return;
    lastCleanup = Date.now();
    const { rowCount } = await db.query(
      `DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < now() - ($1::bigint * interval '1 millisecond')`,
      [options.retentionMs],
    );
    if (rowCount > 0) logger.debug({ deleted: rowCount }, 'outbox cleanup');
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
  /** Publishes until the outbox is empty (or, for the loop, until stopped); false if a publish failed. */
  const drainOnce = async (untilStopped: boolean): Promise<boolean> => {
    try {
      while (!(untilStopped && stopped) && (await publishBatch()) > 0) {
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
      if (ok) await cleanup().catch((err: unknown) => logger.warn({ err }, 'outbox cleanup failed'));
      const backoff = ok ? options.pollIntervalMs : Math.min(options.pollIntervalMs * 2 ** failures, 5_000);
      await waitForWork(backoff);
    }
  })();

  return {
    wake() {
      if (wakeUp) wakeUp();
      else woken = true;
    },
    async drain() {
      // Used at shutdown, after stop(): flushes what is left regardless.
      await drainOnce(false);
    },
    async stop() {
      stopped = true;
      signalStop();
      wakeUp?.();
      await loop;
    },
  };
}
