import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
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

  it('draws a consumer priority per start unless one is set, and refuses one out of range', () => {
    const drawn = new Set(Array.from({ length: 20 }, () => loadInventoryConfig(valid).CONSUMER_PRIORITY));
    for (const p of drawn) expect(p >= 0 && p <= 1_000_000 && Number.isInteger(p)).toBe(true);
    // Twenty draws from a million values: all alike would mean it is not drawn at all.
    expect(drawn.size).toBeGreaterThan(1);
    expect(loadInventoryConfig({ ...valid, CONSUMER_PRIORITY: '0' }).CONSUMER_PRIORITY).toBe(0);
    expect(() => loadInventoryConfig({ ...valid, CONSUMER_PRIORITY: '-1' })).toThrow(
      'CONSUMER_PRIORITY ("-1"): must be between 0 and 1000000',
    );
    expect(() => loadInventoryConfig({ ...valid, CONSUMER_PRIORITY: '2.5' })).toThrow('CONSUMER_PRIORITY ("2.5"): must be a whole number');
  });

  it('takes the origins whose pages may call from a browser (CORS_ORIGINS) exactly as browsers send them, none by default', () => {
    expect(loadInventoryConfig(valid).CORS_ORIGINS).toEqual([]);
    expect(loadInventoryConfig({ ...valid, CORS_ORIGINS: 'https://shop.example.com, http://localhost:5173' }).CORS_ORIGINS).toEqual([
      'https://shop.example.com',
      'http://localhost:5173',
    ]);
    for (const bad of ['*', 'shop.example.com', 'https://shop.example.com/', 'https://Shop.example.com', 'https://shop.example.com/app']) {
      expect(() => loadInventoryConfig({ ...valid, CORS_ORIGINS: bad }), bad).toThrow(/CORS_ORIGINS \(.*\): must be origins such as/);
    }
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

  it('reads any option from a file named by X_FILE (Docker and Kubernetes secrets), and accepts TLS URLs', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'stockflow-secrets-'));
    writeFileSync(path.join(dir, 'jwt'), 'a-secret-read-from-a-file-of-32-characters\n');
    writeFileSync(path.join(dir, 'db'), 'postgres://u:p@db.internal:5432/inventory?sslmode=verify-full&sslrootcert=/etc/ca.pem');
    const config = loadInventoryConfig({
      AMQP_URL: 'amqps://user:pass@broker.internal:5671/prod',
      AUTH_JWT_SECRET_FILE: path.join(dir, 'jwt'),
      DATABASE_URL_FILE: path.join(dir, 'db'),
    });
    expect(config.AUTH_JWT_SECRET).toBe('a-secret-read-from-a-file-of-32-characters');
    expect(config.DATABASE_URL).toContain('sslmode=verify-full');
    expect(() => loadInventoryConfig({ ...valid, DATABASE_URL_FILE: path.join(dir, 'db') })).toThrow(/set one of them, not both/);
    expect(() => loadInventoryConfig({ ...valid, AUTH_JWT_SECRET_FILE: path.join(dir, 'missing') })).toThrow(/cannot be read/);
  });

  it("takes the URLs of a cluster's nodes, comma-separated, sharing credentials and vhost, and never prints a password", () => {
    const nodes = 'amqp://app:s3cret@rabbit-0:5672/shop, amqp://app:s3cret@rabbit-1:5672/shop,amqp://app:s3cret@rabbit-2/shop';
    expect(loadInventoryConfig({ ...valid, AMQP_URL: nodes }).AMQP_URL).toBe(nodes);
    const refused = (url: string) => {
      try {
        loadInventoryConfig({ ...valid, AMQP_URL: url });
      } catch (error) {
        return (error as Error).message;
      }
      throw new Error(`${url} was accepted`);
    };
    const mixed = refused('amqp://app:s3cret@rabbit-0:5672/shop,amqp://other:s3cret@rabbit-1:5672/shop');
    expect(mixed).toContain('must differ only in host and port');
    expect(refused('amqp://app:s3cret@rabbit-0:5672,http://app:s3cret@rabbit-1')).toContain('"http://rabbit-1" is not');
    for (const message of [mixed, refused('amqp://app:s3cret@rabbit-0:5672,nonsense')]) expect(message).not.toContain('s3cret');
    // A password may hold a comma or an at sign of its own: the list is split before each URL,
    // and what is masked runs to the last @ before the host.
    const odd = 'amqp://app:p,s@ss@rabbit-0:5672/shop,amqp://app:p,s@ss@rabbit-1:5672/shop';
    expect(loadInventoryConfig({ ...valid, AMQP_URL: odd }).AMQP_URL).toBe(odd);
    const oddMixed = refused('amqp://app:p,s@ss@rabbit-0:5672/shop,amqp://other:p,s@ss@rabbit-1:5672/shop');
    expect(oddMixed).not.toMatch(/p,s|s@ss|ss@rabbit/);
    expect(oddMixed).toContain('amqp://app:***@rabbit-0:5672/shop');
  });

  it('declares quorum queues unless told classic, and refuses another type', () => {
    expect(loadInventoryConfig(valid).AMQP_QUEUE_TYPE).toBe('quorum');
    expect(loadInventoryConfig({ ...valid, AMQP_QUEUE_TYPE: 'classic' }).AMQP_QUEUE_TYPE).toBe('classic');
    expect(() => loadInventoryConfig({ ...valid, AMQP_QUEUE_TYPE: 'stream' })).toThrow(/AMQP_QUEUE_TYPE \("stream"\)/);
  });
});
