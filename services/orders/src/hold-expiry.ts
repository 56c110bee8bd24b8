import type { Logger, Subscription } from '@stockflow/platform';

/**
 * Every instance sweeps for payment holds that ran out, every `intervalMs`: the sweep skips rows
 * another instance holds, so running it everywhere cancels each order once and keeps expiry going
 * while any instance is up. A failed sweep (the database away) is logged and tried again at the
 * next tick; nothing is lost, since what is due stays due.
 */
export function startHoldExpiry(options: { expireHolds: () => Promise<number>; intervalMs: number; logger: Logger }): Subscription {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const sweep = async () => {
    try {
      const expired = await options.expireHolds();
      if (expired > 0) options.logger.info({ expired }, 'unpaid orders cancelled: their payment hold ran out');
    } catch (err) {
      options.logger.warn({ err }, 'payment hold expiry failed; trying again at the next tick');
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = sweep().finally(schedule);
    }, options.intervalMs);
  };
  schedule();
  return {
    async close() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
