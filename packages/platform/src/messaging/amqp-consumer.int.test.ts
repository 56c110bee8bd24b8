import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Connection } from 'rabbitmq-client';
import type { QueueSpec } from '@stockflow/contracts';
import { eventually, uniqueName } from '@stockflow/testing';
import { createLogger } from '../logger.ts';
import { consumeWithBatchedAcks } from './amqp-consumer.ts';
import type { IncomingMessage } from './transport.ts';

const servicesUnavailable = inject('servicesUnavailable');

describe.skipIf(servicesUnavailable)('AMQP consumer with batched acknowledgements', () => {
  let connection: Connection;
  beforeAll(async () => {
    connection = new Connection({ url: inject('amqpUrl'), retryLow: 100, retryHigh: 500 });
    await connection.onConnect(5_000);
  });
  afterAll(async () => connection?.close());

  const queueSpec = (): QueueSpec => {
    const queue = uniqueName('consumer-test');
    return { queue, durable: true, arguments: {}, bindings: [], deadLetterQueue: `${queue}.dlq`, retryQueues: [] };
  };
  const options = (queue: QueueSpec) => ({
    connection,
    queue,
    exchanges: [],
    prefetch: 50,
    logger: createLogger({ name: 'test', level: 'silent' }),
    retryLowMs: 100,
    retryHighMs: 500,
  });
  const publish = async (queue: string, bodies: unknown[]) => {
    const publisher = connection.createPublisher({ confirm: true });
    for (const body of bodies) await publisher.send({ routingKey: queue, durable: true }, body);
    await publisher.close();
  };
  const depth = async (queue: string) => (await connection.queueDeclare({ queue, durable: true })).messageCount;

  it('acknowledges every delivery once its handler resolves, whatever order they finish in', async () => {
    const queue = queueSpec();
    const seen: number[] = [];
    const subscription = await consumeWithBatchedAcks(options(queue), async (m: IncomingMessage) => {
      const n = (m.body as { n: number }).n;
      // Later messages finish first: the acknowledgement waits until everything before is done.
      await new Promise((r) => setTimeout(r, (20 - n) * 5));
      seen.push(n);
    });
    await publish(
      queue.queue,
      Array.from({ length: 20 }, (_, n) => ({ n })),
    );
    await eventually(
      () => Promise.resolve(seen.length),
      (n) => n === 20,
    );
    await subscription.close();
    // Nothing was left unacknowledged: a new consumer gets nothing back.
    expect(await depth(queue.queue)).toBe(0);
    expect(new Set(seen).size).toBe(20);
    await connection.queueDelete({ queue: queue.queue });
  });

  it('hands a delivery back when its handler throws, and acknowledges the others', async () => {
    const queue = queueSpec();
    const attempts = new Map<number, boolean[]>();
    const subscription = await consumeWithBatchedAcks(options(queue), (m: IncomingMessage) => {
      const n = (m.body as { n: number }).n;
      attempts.set(n, [...(attempts.get(n) ?? []), m.redelivered]);
      return n === 3 && !m.redelivered ? Promise.reject(new Error('not yet')) : Promise.resolve();
    });
    await publish(
      queue.queue,
      Array.from({ length: 6 }, (_, n) => ({ n })),
    );
    await eventually(
      () => Promise.resolve([...attempts.values()].flat().length),
      (n) => n === 7,
    );
    await subscription.close();
    expect(attempts.get(3)).toEqual([false, true]);
    for (const n of [0, 1, 2, 4, 5]) expect(attempts.get(n)).toEqual([false]);
    expect(await depth(queue.queue)).toBe(0);
    await connection.queueDelete({ queue: queue.queue });
  });
});
