import { describe, expect, it } from 'vitest';
import { createRateLimiter, RateLimitedError } from './rate-limit.ts';

describe('createRateLimiter', () => {
  it('lets a burst through, then the sustained rate, for each client on its own', () => {
    let t = 0;
    const limiter = createRateLimiter({ perSecond: 2, burst: 3, now: () => t });
    for (let i = 0; i < 3; i += 1) limiter.take('alice');
    expect(() => limiter.take('alice')).toThrow(RateLimitedError);
    limiter.take('bob');
    t += 500;
    limiter.take('alice');
    expect(() => limiter.take('alice')).toThrow(/try again in 1 s/);
  });

  it('says how long to wait', () => {
    const limiter = createRateLimiter({ perSecond: 1, burst: 1, now: () => 0 });
    limiter.take('c');
    try {
      limiter.take('c');
      expect.unreachable();
    } catch (error) {
      expect((error as RateLimitedError).code).toBe('RATE_LIMITED');
      expect((error as RateLimitedError).details).toEqual({ retryAfterMs: 1_000 });
    }
  });
});
