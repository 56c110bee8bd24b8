/**
 * Groups concurrent calls into one: items submitted within `lingerMs` of each other (at most
 * `maxBatch`) are handed to `run` together, and each caller gets its own result or error. Used
 * where many small requests would otherwise each pay for a commit (createOrder under load).
 */
export function createBatcher<In, Out>(options: {
  maxBatch: number;
  lingerMs: number;
  /** Returns one result per item, in order: a value, or an Error for that item alone. */
  run(items: In[]): Promise<(Out | Error)[]>;
}) {
  let pending: { item: In; resolve(value: Out): void; reject(error: unknown): void }[] = [];
  let timer: NodeJS.Timeout | undefined;

  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    const batch = pending;
    pending = [];
    if (batch.length === 0) return;
    options.run(batch.map((p) => p.item)).then(
      (results) =>
        batch.forEach((p, i) => {
          const result = results[i];
          if (result instanceof Error) p.reject(result);
          else p.resolve(result as Out);
        }),
      (error: unknown) => batch.forEach((p) => p.reject(error)),
    );
  };

  return {
    submit(item: In): Promise<Out> {
      return new Promise<Out>((resolve, reject) => {
        pending.push({ item, resolve, reject });
        if (pending.length >= options.maxBatch) flush();
        else timer ??= setTimeout(flush, options.lingerMs);
      });
    },
  };
}
