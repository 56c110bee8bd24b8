import { describe, expect, it } from 'vitest';
import { createBatcher } from './batcher.ts';

describe('createBatcher', () => {
  it('hands concurrent calls to one run and gives each caller its own result or error', async () => {
    const runs: number[][] = [];
    const batcher = createBatcher<number, number>({
      maxBatch: 10,
      lingerMs: 5,
      run: (items) => {
        runs.push(items);
        return Promise.resolve(items.map((n) => (n < 0 ? new Error(`negative ${n}`) : n * 2)));
      },
    });
    const results = await Promise.allSettled([1, 2, -3, 4].map((n) => batcher.submit(n)));
    expect(runs).toEqual([[1, 2, -3, 4]]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([2, 4, 'negative -3', 8]);
  });

  it('starts a run as soon as a batch is full, and fails every caller of a run that fails', async () => {
    const runs: number[][] = [];
    const batcher = createBatcher<number, number>({
      maxBatch: 2,
      lingerMs: 1_000,
      run: (items) => {
        runs.push(items);
        return items.includes(3) ? Promise.reject(new Error('down')) : Promise.resolve(items);
      },
    });
    const results = await Promise.allSettled([1, 2, 3, 4].map((n) => batcher.submit(n)));
    expect(runs).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected']);
  });
});
