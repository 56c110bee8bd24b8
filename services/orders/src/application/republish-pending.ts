import type { Database } from '@stockflow/db';
import { answerLagSeconds, countDueAgain, markRepublished } from '../db/orders.ts';
import { ANNOUNCED } from '../domain/lifecycle.ts';
import { eventFor } from '../messaging/events.ts';
import type { Effects } from './effects.ts';

/** What one run of the repair did. */
export interface Reconciliation {
  /** The orders whose OrderCreated was sent again, oldest first. */
  ids: string[];
  /** Orders still due after this run (by the same threshold). */
  remaining: number;
  /** The threshold applied: the one asked for, or the answer lag when that was longer. */
  olderThanSeconds: number;
  /** How long Inventory's latest answers took (see answerLagSeconds). */
  lagSeconds: number;
}

/**
 * The repair for orders nobody answered: sends again the OrderCreated of at most `limit` orders
 * PENDING for longer than the threshold, oldest first (a new event id, the same order id and
 * lines), through the outbox, in one transaction. Inventory answers a repeat with its stored
 * decision, so nothing is reserved twice.
 *
 * The threshold is `olderThanSeconds`, raised to the current answer lag when that is longer:
 * while Inventory's answers take that long, a younger PENDING order is most likely waiting in its
 * queue, and sending it again would only lengthen the queue it waits in (during a flash sale,
 * double it). An order sent again waits out the same threshold before it is sent once more, and
 * rows a concurrent run holds are skipped: safe at any time, from any number of instances.
 * `remaining` is how many are still due after this batch.
 */
export const republishPending = (db: Database, effects: Effects, olderThanSeconds: number, limit: number): Promise<Reconciliation> =>
  db.transaction(async (tx) => {
    const lagSeconds = await answerLagSeconds(tx);
    const threshold = Math.max(olderThanSeconds, Math.ceil(lagSeconds));
    const sent = await markRepublished(tx, threshold, limit);
    await effects.outbox.enqueue(
      tx,
      sent.map((o) => eventFor(ANNOUNCED.PENDING, o, effects.clock)),
    );
    // Those just sent count no more: their republished_at is this transaction's now().
    const remaining = await countDueAgain(tx, threshold);
    return { ids: sent.map((o) => o.id), remaining, olderThanSeconds: threshold, lagSeconds };
  });
