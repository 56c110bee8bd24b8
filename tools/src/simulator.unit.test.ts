import { describe, expect, it } from 'vitest';
import { AppError } from '@stockflow/platform';
import { requireLocal } from './simulator.ts';

const refusal = (targets: Parameters<typeof requireLocal>[0]) => {
  try {
    requireLocal(targets);
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('FORBIDDEN');
    return (error as Error).message;
  }
  throw new Error(`accepted: ${JSON.stringify(targets)}`);
};

describe('the simulators run against this machine unless told otherwise', () => {
  it.each([
    'amqp://guest:guest@127.0.0.1:5672',
    'amqp://guest:guest@localhost',
    'amqp://guest:guest@[::1]:5672/stockflow',
    'amqps://u:p@127.0.0.2',
    'amqp://u:p@127.0.0.1:5681,amqp://u:p@[::1]:5682,amqp://u:p@localhost:5683',
  ])('takes the broker %s', (amqpUrl) => {
    expect(() => requireLocal({ amqpUrl, ordersUrl: 'http://localhost:8001/graphql' })).not.toThrow();
    expect(() => requireLocal({ amqpUrl, ordersUrl: 'http://[::1]:8001/graphql' })).not.toThrow();
  });

  it.each([
    ['amqp://app:S3cret@rabbit.example.com:5672', 'the broker amqp://rabbit.example.com:5672'],
    ['amqp://app:S3cret@10.0.0.7', 'the broker amqp://10.0.0.7'],
    ['amqp://app:S3cret@[2001:db8::7]:5672', 'the broker amqp://[2001:db8::7]:5672'],
    ['amqp://app:S3cret@127.0.0.1.nip.io', 'the broker amqp://127.0.0.1.nip.io'],
    ['amqp://app:S3cret@127.0.0.1,amqp://app:S3cret@rabbit-1', 'the broker amqp://rabbit-1'],
  ])('refuses the broker %s without --allow-remote, saying which and why, without its password', (amqpUrl, named) => {
    const message = refusal({ amqpUrl });
    expect(message).toContain(`refusing to run against ${named}: not on this machine`);
    expect(message).toContain('pass --allow-remote');
    expect(message).not.toContain('S3cret');
    expect(() => requireLocal({ amqpUrl }, true)).not.toThrow();
  });

  it('refuses an Order API elsewhere too (the payment simulator places its orders there)', () => {
    const message = refusal({ amqpUrl: 'amqp://guest:guest@127.0.0.1', ordersUrl: 'https://shop.example.com/graphql' });
    expect(message).toContain('refusing to run against the Order API https://shop.example.com/graphql: not on this machine');
    expect(() =>
      requireLocal({ amqpUrl: 'amqp://guest:guest@127.0.0.1', ordersUrl: 'https://shop.example.com/graphql' }, true),
    ).not.toThrow();
  });
});
