import { untilAborted, type Subscription } from '@stockflow/messaging';
import type { Logger } from '@stockflow/observability';

/** Holds cancelled per transaction: a flash sale leaves tens of thousands due in the same minute. */
export const HOLD_EXPIRY_BATCH = 500;

/**
 * Every instance sweeps for payment holds that ran out, every `intervalMs`, in batches of
 * `batchSize` until none is due: the sweep skips rows another instance holds, so running it
 * everywhere cancels each order once and keeps expiry going while any instance is up. Shutdown
 * stops it between two batches (what is left stays due for the other instances, or the next
 * start). A failed sweep (the database away) is logged and tried again at the next tick; nothing
 * is lost, since what is due stays due.
 */
export function startHoldExpiry(options: {
  /** Cancels up to `limit` due holds in one transaction; returns how many. */
  expireHolds: (limit: number) => Promise<number>;
  intervalMs: number;
  batchSize?: number;
  logger: Logger;
}): Subscription {
  const batchSize = options.batchSize ?? HOLD_EXPIRY_BATCH;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const sweep = async () => {
    let expired = 0;
    try {
      for (;;) {
        const batch = await options.expireHolds(batchSize);
        expired += batch;
        if (batch < batchSize || stopped) break;
      }
    } catch (err) {
      options.logger.warn({ err }, 'payment hold expiry failed; trying again at the next tick');
    }
    if (expired > 0) options.logger.info({ expired }, 'unpaid orders cancelled: their payment hold ran out');
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = sweep().finally(schedule);
    }, options.intervalMs);
  };
  schedule();
  return {
    async close(giveUp) {
      stopped = true;
      clearTimeout(timer);
      // The batch under way commits (or, cut at the deadline, rolls back as the process ends).
      await untilAborted(running, giveUp);
    },
  };
}
