import { describe, expect, it } from 'vitest';
import { batchLoader } from './loader.ts';

describe('batchLoader', () => {
  it('fetches the keys asked for in one turn of the event loop with one call, each key once', async () => {
    const calls: number[][] = [];
    const load = batchLoader((keys: number[]) => {
      calls.push(keys);
      return Promise.resolve((key: number) => key * 10);
    });
    expect(await Promise.all([load(1), load(2), load(1)])).toEqual([10, 20, 10]);
    expect(calls).toEqual([[1, 2]]);
  });

  it('fetches again for keys asked for once a batch has gone out', async () => {
    const calls: string[][] = [];
    const load = batchLoader((keys: string[]) => {
      calls.push(keys);
      return Promise.resolve((key: string) => key.toUpperCase());
    });
    expect(await load('a')).toBe('A');
    expect(await load('b')).toBe('B');
    expect(calls).toEqual([['a'], ['b']]);
  });

  it('gives every caller of a failed batch the failure', async () => {
    const load = batchLoader((_keys: number[]): Promise<(key: number) => number> => Promise.reject(new Error('database gone')));
    const results = await Promise.allSettled([load(1), load(2)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });
});
