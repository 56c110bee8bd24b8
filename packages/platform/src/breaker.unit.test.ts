import { describe, expect, it } from 'vitest';
import { createLogger } from '@stockflow/observability';
import { CircuitBreaker, isDatabaseOutage } from './breaker.ts';
import { AppError } from './errors.ts';

const outage = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

function breaker() {
  let now = 0;
  const b = new CircuitBreaker({
    name: 'database',
    failureThreshold: 2,
    openMs: 1_000,
    maxOpenMs: 4_000,
    isOutage: isDatabaseOutage,
    logger: createLogger({ name: 'test', level: 'silent' }),
    now: () => now,
  });
  return { b, advance: (ms: number) => (now += ms) };
}

const fail = () => Promise.reject(outage);
const ok = () => Promise.resolve('ok');

describe('CircuitBreaker', () => {
  it('opens after the threshold of consecutive outages and then fails fast with UNAVAILABLE', async () => {
    const { b } = breaker();
    await expect(b.run(fail)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(b.state).toBe('closed');
    await expect(b.run(fail)).rejects.toBeInstanceOf(AppError);
    expect(b.state).toBe('open');
    let called = false;
    await expect(
      b.run(() => {
        called = true;
        return ok();
      }),
    ).rejects.toMatchObject({ code: 'UNAVAILABLE', message: 'the database is temporarily unavailable; try again shortly' });
    expect(called).toBe(false);
  });

  it('lets one probe through after the pause and closes when it succeeds', async () => {
    const { b, advance } = breaker();
    await b.run(fail).catch(() => undefined);
    await b.run(fail).catch(() => undefined);
    advance(1_000);
    await expect(b.run(ok)).resolves.toBe('ok');
    expect(b.state).toBe('closed');
  });

  it('opens again for twice as long when the probe fails', async () => {
    const { b, advance } = breaker();
    await b.run(fail).catch(() => undefined);
    await b.run(fail).catch(() => undefined);
    advance(1_000);
    await b.run(fail).catch(() => undefined);
    expect(b.state).toBe('open');
    advance(1_500);
    await expect(b.run(ok)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    advance(500);
    await expect(b.run(ok)).resolves.toBe('ok');
  });

  it('does not count errors that are not outages (a refused statement means the database is up)', async () => {
    const { b } = breaker();
    const constraint = Object.assign(new Error('duplicate key'), { code: '23505' });
    for (let i = 0; i < 5; i += 1) await expect(b.run(() => Promise.reject(constraint))).rejects.toBe(constraint);
    expect(b.state).toBe('closed');
  });
});
