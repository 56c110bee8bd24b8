import { describe, expect, it } from 'vitest';
import { ConfigError } from '@stockflow/platform';
import { loadInventoryConfig } from './config.ts';

const valid = { DATABASE_URL: 'postgres://u@localhost:5432/inventory', AMQP_URL: 'amqp://guest:guest@localhost:5672' };

describe('inventory configuration', () => {
  it('applies documented defaults', () => {
    const config = loadInventoryConfig(valid);
    expect(config.PORT).toBe(8000);
    expect(config.CONSUMER_BATCH_SIZE).toBe(250);
  });

  it('names every bad variable in one message', () => {
    let error: unknown;
    try {
      loadInventoryConfig({ ...valid, PORT: 'eighty', AMQP_URL: 'http://localhost', CONSUMER_BATCH_SIZE: '0' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain('PORT ("eighty"): must be a port number');
    expect(message).toContain('AMQP_URL ("http://localhost"): must be a URL starting with amqp:// or amqps://');
    expect(message).toContain('CONSUMER_BATCH_SIZE ("0"): must be positive');
  });
});
