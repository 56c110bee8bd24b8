import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { QUEUE_CONSUMERS, queues, type EventParty } from '@stockflow/contracts';
import { createLogger } from '@stockflow/observability';
import { graphqlClient, signToken } from '@stockflow/client';
import type { RunningService } from '@stockflow/runtime';
import { createTestDatabase, eventually, rawAmqp, type TestDatabase } from '@stockflow/testing';
import { loadInventoryConfig, startInventoryService } from '@stockflow/inventory';
import { loadOrdersConfig, startOrdersService } from '@stockflow/orders';

const servicesUnavailable = inject('servicesUnavailable');
const SECRET = randomBytes(32).toString('hex');
const logger = createLogger({ name: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });

const STARTERS = {
  inventoryService: (env: Record<string, string>) => startInventoryService(loadInventoryConfig(env), logger),
  orderService: (env: Record<string, string>) => startOrdersService(loadOrdersConfig(env), logger),
} satisfies Partial<Record<EventParty, unknown>>;

const queueKeys = Object.keys(queues) as (keyof typeof queues)[];

/**
 * Each service started alone, so that a queue with a consumer is consumed by that service: QUEUE_CONSUMERS, from which the
 * AsyncAPI document names each queue's receiver and each service lists the queues whose dead letters it administers, must
 * also be what the service really consumes.
 */
describe.skipIf(servicesUnavailable)('who consumes each queue, as QUEUE_CONSUMERS says', () => {
  const amqpUrl = inject('amqpUrl');
  let db: TestDatabase | undefined;
  let service: RunningService | undefined;

  afterEach(async () => {
    await service?.close();
    await db?.drop();
    [service, db] = [undefined, undefined];
  });

  it.each(Object.keys(STARTERS) as (keyof typeof STARTERS)[])(
    'the %s consumes exactly its queues, and administers their dead letters and no others',
    async (party) => {
      db = await createTestDatabase(`consumers_${party}`);
      service = await STARTERS[party]({ DATABASE_URL: db.url, AMQP_URL: amqpUrl, PORT: '0', HOST: '127.0.0.1', AUTH_JWT_SECRET: SECRET });
      const own = (key: keyof typeof queues) => QUEUE_CONSUMERS[key] === party;

      const amqp = await rawAmqp(amqpUrl);
      try {
        const consumed = async () =>
          Object.fromEntries(
            await Promise.all(
              queueKeys.map(async (key) => {
                const { consumerCount } = await amqp.connection.queueDeclare({ queue: queues[key].queue, passive: true });
                return [key, consumerCount > 0] as const;
              }),
            ),
          );
        const expected = Object.fromEntries(queueKeys.map((key) => [key, own(key)]));
        expect(await eventually(consumed, (c) => JSON.stringify(c) === JSON.stringify(expected))).toEqual(expected);
      } finally {
        await amqp.close();
      }

      const client = graphqlClient(`http://127.0.0.1:${service.port}/graphql`, {
        token: await signToken(SECRET, { sub: 'consumers-test', role: 'admin' }),
      });
      try {
        for (const key of queueKeys) {
          const res = await client.request(`{ deadLetters(queue: "${queues[key].queue}") { id } }`);
          if (own(key)) expect(res.errors, key).toBeUndefined();
          else expect(res.errors?.[0]?.message, key).toMatch(/queue must be one of/);
        }
      } finally {
        client.close();
      }
    },
  );
});
