import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { createLogger } from '@stockflow/observability';
import type { RunningService } from '@stockflow/runtime';
import { createTestDatabase, type TestDatabase } from '@stockflow/testing';
import { loadInventoryConfig, startInventoryService } from '@stockflow/inventory';
import { loadOrdersConfig, startOrdersService } from '@stockflow/orders';
import { asyncApiFile } from './asyncapi.ts';

describe.skipIf(inject('servicesUnavailable'))('each service serves the AsyncAPI document', () => {
  const databases: TestDatabase[] = [];
  const services: RunningService[] = [];

  beforeAll(async () => {
    const env = async (name: string) => {
      const db = await createTestDatabase(name);
      databases.push(db);
      return { DATABASE_URL: db.url, AMQP_URL: inject('amqpUrl'), PORT: '0', HOST: '127.0.0.1', AUTH_DISABLED: 'true' };
    };
    const logger = createLogger({ name: 'test', level: 'silent' });
    services.push(await startInventoryService(loadInventoryConfig(await env('asyncapi_inventory')), logger));
    services.push(await startOrdersService(loadOrdersConfig(await env('asyncapi_orders')), logger));
  });
  afterAll(async () => {
    for (const s of services) await s.close();
    for (const db of databases) await db.drop();
  });

  it('at /asyncapi.json, the very document committed in docs/asyncapi.yaml', async () => {
    const committed: unknown = parse(await readFile(asyncApiFile, 'utf8'));
    expect(services.map((s) => s.name)).toEqual(['inventory', 'orders']);
    for (const service of services) {
      const res = await fetch(`http://127.0.0.1:${service.port}/asyncapi.json`);
      expect(res.status, service.name).toBe(200);
      expect(res.headers.get('content-type'), service.name).toBe('application/json');
      expect(await res.json(), service.name).toEqual(committed);
    }
  });
});
