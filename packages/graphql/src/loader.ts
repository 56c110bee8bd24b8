/**
 * A loader for resolvers: the keys asked for in one turn of the event loop are fetched with one
 * call of `fetch`, which answers with a function from a key to its value. A page of 100 orders
 * asks for its payments or products in one query, not 100.
 */
export function batchLoader<K, V>(fetch: (keys: K[]) => Promise<(key: K) => V>): (key: K) => Promise<V> {
  let queued: { keys: Set<K>; answer: Promise<(key: K) => V> } | undefined;
  return async (key) => {
    if (!queued) {
      const keys = new Set<K>();
      // setImmediate, not a microtask: resolvers of one level of a query run across several microtask turns.
      const answer = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        queued = undefined;
        return fetch([...keys]);
      });
      queued = { keys, answer };
    }
    queued.keys.add(key);
    return (await queued.answer)(key);
  };
}
