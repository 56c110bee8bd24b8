import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXCHANGES, queues, ROUTING_KEYS } from '@stockflow/contracts';
import { startPlatform, type RunningPlatform } from '../src/platform.ts';

/** `npm start` stopped and started again on the same DATA_DIR. */
describe('embedded platform across a restart', () => {
  let dir: string;
  let platform: RunningPlatform | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'stockflow-embedded-restart-'));
  });
  afterAll(async () => {
    await platform?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const start = () =>
    startPlatform({
      INVENTORY_PORT: '0',
      ORDERS_PORT: '0',
      DASHBOARD_PORT: '0',
      GATEWAY_PORT: '0',
      LOG_LEVEL: 'silent',
      SEED_SAMPLE_CATALOG: 'false',
      DATA_DIR: dir,
    });

  it('keeps a parked message', async () => {
    platform = await start();
    // Resolves once the Inventory Service's consumer has handled it: parked it, not JSON.
    await platform.inventory.transport.publish([
      { exchange: EXCHANGES.orders, routingKey: ROUTING_KEYS.orderCreated, messageId: 'malformed', body: '{not json' },
    ]);
    expect(await platform.inventory.transport.deadLetters.count(queues.orderCreatedInventory)).toBe(1);
    await platform.close();
    platform = undefined;

    platform = await start();
    expect(await platform.inventory.transport.deadLetters.list(queues.orderCreatedInventory, 10)).toEqual([
      {
        id: 'malformed',
        queue: queues.orderCreatedInventory.queue,
        reason: expect.stringMatching(/^body is not JSON/) as string,
        routingKey: ROUTING_KEYS.orderCreated,
        body: '{not json',
      },
    ]);
  });
});
