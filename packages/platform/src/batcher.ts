/**
 * Groups concurrent calls into one run, the way a database groups commits: at most `maxInFlight`
 * runs go at once, and whatever arrives meanwhile waits to form the next one (up to `maxBatch`).
 * An idle batcher starts a run at the next turn of the event loop, so a lone call waits for no
 * timer; under load the batches grow by themselves, one commit serving many calls. A run goes
 * alongside one already under way only with at least half a batch waiting: a trickle split across
 * parallel runs costs a transaction (and its round trips) for every few calls, which on a busy
 * machine is CPU taken from everything else, while a backlog still gets the runs in parallel.
 * Each caller gets its own result or error.
 */
export function createBatcher<In, Out>(options: {
  maxBatch: number;
  maxInFlight: number;
  /** Returns one result per item, in order: a value, or an Error for that item alone. */
  run(items: In[]): Promise<(Out | Error)[]>;
}) {
  let pending: { item: In; resolve(value: Out): void; reject(error: unknown): void }[] = [];
  let inFlight = 0;
  let scheduled = false;

  const start = (batch: typeof pending) => {
    inFlight += 1;
    options
      .run(batch.map((p) => p.item))
      .then(
        (results) =>
          batch.forEach((p, i) => {
            const result = results[i];
            if (result instanceof Error) p.reject(result);
            else p.resolve(result as Out);
          }),
        (error: unknown) => batch.forEach((p) => p.reject(error)),
      )
      .finally(() => {
        inFlight -= 1;
        schedule();
      });
  };

  const alongside = Math.ceil(options.maxBatch / 2);
  const canStart = () => pending.length > 0 && (inFlight === 0 || (inFlight < options.maxInFlight && pending.length >= alongside));

  const flush = () => {
    scheduled = false;
    while (canStart()) {
      const batch = pending.slice(0, options.maxBatch);
      pending = pending.slice(batch.length);
      start(batch);
    }
  };

  // setImmediate, not a microtask: every request read in this turn of the event loop joins.
  function schedule() {
    if (scheduled || !canStart()) return;
    scheduled = true;
    setImmediate(flush);
  }

  return {
    submit(item: In): Promise<Out> {
      return new Promise<Out>((resolve, reject) => {
        pending.push({ item, resolve, reject });
        schedule();
      });
    },
  };
}
