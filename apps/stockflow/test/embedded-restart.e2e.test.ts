import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXCHANGES, queues, ROUTING_KEYS } from '@stockflow/contracts';
import { startPlatform, type RunningPlatform } from '../src/platform.ts';
import { embeddedEnv } from './embedded.ts';

/** `npm start` stopped and started again on the same DATA_DIR. */
describe('embedded platform across a restart', () => {
  let embedded: Awaited<ReturnType<typeof embeddedEnv>>;
  let platform: RunningPlatform | undefined;

  beforeAll(async () => {
    embedded = await embeddedEnv('embedded-restart');
  });
  afterAll(async () => {
    await platform?.close();
    await embedded.remove();
  });

  const start = () => startPlatform(embedded.env);

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
