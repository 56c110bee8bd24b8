import { describe, expect, it } from 'vitest';
import { createBatcher } from './batcher.ts';

const deferred = () => {
  let release: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => (release = resolve));
  return { promise, release };
};

/** A batcher whose first run stays busy until `gate.release()`; `runs` records every run's items. */
const gatedBatcher = (maxBatch: number, maxInFlight: number) => {
  const runs: number[][] = [];
  const gate = deferred();
  const batcher = createBatcher<number, number>({
    maxBatch,
    maxInFlight,
    run: async (items) => {
      runs.push(items);
      if (runs.length === 1) await gate.promise;
      return items;
    },
  });
  return { batcher, runs, gate };
};

describe('createBatcher', () => {
  it('hands calls made together to one run and gives each caller its own result or error', async () => {
    const runs: number[][] = [];
    const batcher = createBatcher<number, number>({
      maxBatch: 10,
      maxInFlight: 1,
      run: (items) => {
        runs.push(items);
        return Promise.resolve(items.map((n) => (n < 0 ? new Error(`negative ${n}`) : n * 2)));
      },
    });
    const results = await Promise.allSettled([1, 2, -3, 4].map((n) => batcher.submit(n)));
    expect(runs).toEqual([[1, 2, -3, 4]]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([2, 4, 'negative -3', 8]);
  });

  it('gathers what arrives while the runs in flight are busy into the next run, up to maxBatch', async () => {
    const { batcher, runs, gate } = gatedBatcher(3, 1);
    const first = batcher.submit(0);
    await new Promise((r) => setImmediate(r));
    expect(runs).toEqual([[0]]);
    // The first run is still busy: these wait, then go as full batches, one run at a time.
    const rest = [1, 2, 3, 4, 5].map((n) => batcher.submit(n));
    await new Promise((r) => setImmediate(r));
    expect(runs).toHaveLength(1);
    gate.release();
    await Promise.all([first, ...rest]);
    expect(runs).toEqual([[0], [1, 2, 3], [4, 5]]);
  });

  it('runs at most maxInFlight batches at once', async () => {
    let running = 0;
    let most = 0;
    const batcher = createBatcher<number, number>({
      maxBatch: 1,
      maxInFlight: 2,
      run: async (items) => {
        running += 1;
        most = Math.max(most, running);
        await new Promise((r) => setTimeout(r, 5));
        running -= 1;
        return items;
      },
    });
    await Promise.all([1, 2, 3, 4, 5].map((n) => batcher.submit(n)));
    expect(most).toBe(2);
  });

  it('fails every caller of a run that fails, and carries on with the next run', async () => {
    const batcher = createBatcher<number, number>({
      maxBatch: 2,
      maxInFlight: 1,
      run: (items) => (items.includes(3) ? Promise.reject(new Error('down')) : Promise.resolve(items)),
    });
    const results = await Promise.allSettled([1, 2, 3, 4, 5].map((n) => batcher.submit(n)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected', 'fulfilled']);
  });

  it('starts a run alongside a busy one only with at least half a batch waiting', async () => {
    const { batcher, runs, gate } = gatedBatcher(4, 2);
    const first = batcher.submit(0);
    await new Promise((r) => setImmediate(r));
    // One waiting call is a trickle: it waits for the busy run rather than taking a commit of its own.
    const second = batcher.submit(1);
    await new Promise((r) => setImmediate(r));
    expect(runs).toEqual([[0]]);
    // Half a batch waiting is a backlog: it goes at once, alongside.
    const third = batcher.submit(2);
    await new Promise((r) => setImmediate(r));
    expect(runs).toEqual([[0], [1, 2]]);
    gate.release();
    await Promise.all([first, second, third]);
  });
});
