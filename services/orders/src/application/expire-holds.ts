import type { Database } from '@stockflow/db';
import { lockDueHolds, writeHoldOutcomes } from '../db/orders.ts';
import { decideExpiry } from '../domain/lifecycle.ts';
import { announce } from './announce.ts';
import type { Effects } from './effects.ts';

/**
 * Cancels up to `limit` CONFIRMED orders whose payment hold is over, in one transaction; their
 * units go back through OrderCancelled -> StockReleased. Rows another instance (or a payment)
 * holds are skipped, so any number of instances may sweep at once and each order is cancelled
 * once. Returns how many were cancelled: fewer than `limit` when no more were due.
 */
export const expireHolds = (db: Database, effects: Effects, limit: number): Promise<number> =>
  db.transaction(async (tx) => {
    const due = await lockDueHolds(tx, limit);
    const decided = new Map(due.map((hold) => [hold.id, decideExpiry(hold)]));
    const cancelled = [...decided].flatMap(([id, d]) =>
      d.outcome === 'moved' ? [{ id, status: 'CANCELLED' as const, reason: d.reason }] : [],
    );
    const moved = await writeHoldOutcomes(tx, cancelled);
    await announce(
      tx,
      moved.map((order) => {
        const d = decided.get(order.id);
        return { order, events: d?.outcome === 'moved' ? d.announce : [] };
      }),
      effects,
    );
    tx.afterCommit(() => effects.metrics?.holdsExpired.inc(moved.length));
    return moved.length;
  });
