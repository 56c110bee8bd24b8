import { useEffect } from 'react';

/** How often the panels ask again. */
export const POLL_MS = 2_000;

/** Runs `fn` now and every `ms`, while mounted. */
export function usePoll(fn: () => Promise<void>, ms: number, deps: unknown[]) {
  useEffect(() => {
    let stopped = false;
    const tick = async () => {
      try {
        await fn();
      } catch {
        /* shown by the panel that failed */
      }
      if (!stopped) timer = setTimeout(() => void tick(), ms);
    };
    let timer = setTimeout(() => void tick(), 0);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, deps);
}
