import { AppError } from './errors.ts';

export class RateLimitedError extends AppError {
  constructor(retryAfterMs: number) {
    super('RATE_LIMITED', `too many requests; try again in ${Math.ceil(retryAfterMs / 1_000)} s`, { details: { retryAfterMs } });
  }
}

/**
 * A token bucket per client: `perSecond` sustained, `burst` at once. Kept in memory, so each
 * instance limits on its own (behind N instances a client gets up to N times the rate); a
 * gateway in front limits globally. The least recently refilled clients are forgotten past
 * `maxClients`.
 */
export function createRateLimiter(options: { perSecond: number; burst: number; maxClients?: number; now?: () => number }) {
  const now = options.now ?? Date.now;
  const maxClients = options.maxClients ?? 100_000;
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    /** Takes one token for `client`, or throws RATE_LIMITED with how long to wait. */
    take(client: string): void {
      const t = now();
      const bucket = buckets.get(client) ?? { tokens: options.burst, at: t };
      buckets.delete(client);
      bucket.tokens = Math.min(options.burst, bucket.tokens + ((t - bucket.at) / 1_000) * options.perSecond);
      bucket.at = t;
      buckets.set(client, bucket);
      if (buckets.size > maxClients) buckets.delete(buckets.keys().next().value as string);
      if (bucket.tokens < 1) throw new RateLimitedError(((1 - bucket.tokens) / options.perSecond) * 1_000);
      bucket.tokens -= 1;
    },
  };
}
