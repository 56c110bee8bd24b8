/**
 * Actions due at given times, kept track of until done: what the run waits for before it judges,
 * and what it drops (and reports) when it ends first.
 */
export function schedule(onError: (error: unknown) => void, onDone: () => void) {
  const timers = new Set<NodeJS.Timeout>();
  const work = new Set<Promise<void>>();
  const at = (time: number, action: () => Promise<void>) => {
    const p = new Promise<void>((resolve) => {
      const timer = setTimeout(
        () => {
          timers.delete(timer);
          resolve();
        },
        Math.max(0, time - Date.now()),
      );
      timers.add(timer);
    })
      .then(action)
      .catch(onError)
      .finally(() => {
        work.delete(p);
        onDone();
      });
    work.add(p);
  };
  return {
    at,
    idle: () => work.size === 0,
    /** Drops the actions not yet due; how many there were. */
    stop() {
      const dropped = timers.size;
      for (const timer of timers) clearTimeout(timer);
      return dropped;
    },
  };
}
