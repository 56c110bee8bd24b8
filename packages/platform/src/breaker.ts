import type { Logger } from '@stockflow/observability';
import { AppError } from './errors.ts';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  name: string;
  /** Consecutive failures that open the circuit. */
  failureThreshold: number;
  /** How long the circuit stays open before one probe is let through; doubles up to maxOpenMs while probes fail. */
  openMs: number;
  maxOpenMs: number;
  /** Which errors mean the dependency is down (as opposed to a bad request). */
  isOutage(error: unknown): boolean;
  logger: Logger;
  now?: () => number;
}

/**
 * A circuit breaker around a dependency (the database, the broker). Closed: calls go through and
 * consecutive outage errors are counted. Open: calls fail at once with UNAVAILABLE, so nothing
 * hammers a dependency that is down. After a pause one probe is let through (half-open): success
 * closes the circuit, failure opens it again for twice as long.
 */
export class CircuitBreaker {
  private stateValue: BreakerState = 'closed';
  private failures = 0;
  private openFor: number;
  private openUntil = 0;
  private probing = false;
  private waiters: (() => void)[] = [];
  private readonly now: () => number;

  constructor(private readonly options: BreakerOptions) {
    this.openFor = options.openMs;
    this.now = options.now ?? Date.now;
  }

  get state(): BreakerState {
    return this.stateValue;
  }

  unavailable(cause?: unknown): AppError {
    return new AppError('UNAVAILABLE', `the ${this.options.name} is temporarily unavailable; try again shortly`, { cause });
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    this.admit();
    try {
      const result = await fn();
      this.succeeded();
      return result;
    } catch (error) {
      if (this.options.isOutage(error)) {
        this.failed(error);
        throw this.unavailable(error);
      }
      // The dependency answered (a constraint, a bad request): it is up.
      this.succeeded();
      throw error;
    }
  }

  /** Resolves when a call would be let through: closed, or open long enough for a probe. */
  async waitUntilCallable(): Promise<void> {
    for (;;) {
      if (this.stateValue === 'closed') return;
      const wait = this.openUntil - this.now();
      if (this.stateValue === 'open' && wait <= 0) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(wait, 50));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private admit(): void {
    if (this.stateValue === 'closed') return;
    if (this.stateValue === 'open' && this.now() >= this.openUntil && !this.probing) {
      this.transition('half-open');
      this.probing = true;
      return;
    }
    throw this.unavailable();
  }

  private succeeded(): void {
    this.failures = 0;
    if (this.stateValue !== 'closed') {
      this.probing = false;
      this.openFor = this.options.openMs;
      this.transition('closed');
    }
  }

  private failed(error: unknown): void {
    this.failures += 1;
    if (this.stateValue === 'half-open') {
      this.probing = false;
      this.openFor = Math.min(this.openFor * 2, this.options.maxOpenMs);
      this.open(error);
    } else if (this.stateValue === 'closed' && this.failures >= this.options.failureThreshold) {
      this.open(error);
    }
  }

  private open(error: unknown): void {
    this.openUntil = this.now() + this.openFor;
    this.transition('open', error);
  }

  private transition(next: BreakerState, error?: unknown): void {
    if (next === this.stateValue) return;
    const level = next === 'open' ? 'warn' : 'info';
    this.options.logger[level](
      { breaker: this.options.name, from: this.stateValue, to: next, retryInMs: next === 'open' ? this.openFor : undefined, err: error },
      `circuit breaker for the ${this.options.name} is ${next}`,
    );
    this.stateValue = next;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

const CONNECTION_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** PostgreSQL is down or unreachable (not: the statement was refused). */
export function isDatabaseOutage(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | undefined;
  const code = e?.code ?? '';
  if (CONNECTION_ERROR_CODES.has(code)) return true;
  // 08: connection exception; 57P01-03: shutdown / cannot connect now; 53300: too many connections.
  if (code.startsWith('08') || ['57P01', '57P02', '57P03', '53300'].includes(code)) return true;
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable/i.test(
    e?.message ?? '',
  );
}
