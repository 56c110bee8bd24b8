import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Connection } from 'rabbitmq-client';
import type { QueueSpec, IncomingMessage } from '@stockflow/contracts';
import { eventually, startTcpProxy, uniqueName, viaProxy } from '@stockflow/testing';
import { createLogger } from '@stockflow/observability';
import { consumeWithBatchedAcks } from './amqp-consumer.ts';

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
    queueType: 'classic' as const,
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

  it('delivers to the consumer of highest priority until its prefetch is full, then to the next', async () => {
    const queue = queueSpec();
    const received = { high: 0, low: 0 };
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    // The first consumer holds every delivery unacknowledged until released: after 50 (its
    // prefetch) it is blocked, and only then does the broker turn to the other one.
    const high = await consumeWithBatchedAcks({ ...options(queue), priority: 10 }, async () => {
      received.high += 1;
      await held;
    });
    const low = await consumeWithBatchedAcks({ ...options(queue), priority: 1 }, () => {
      received.low += 1;
      return Promise.resolve();
    });
    await publish(
      queue.queue,
      Array.from({ length: 30 }, (_, n) => ({ n })),
    );
    await eventually(
      () => Promise.resolve(received.high),
      (n) => n === 30,
    );
    expect(received.low).toBe(0);
    await publish(
      queue.queue,
      Array.from({ length: 40 }, (_, n) => ({ n: 30 + n })),
    );
    await eventually(
      () => Promise.resolve(received.high + received.low),
      (n) => n === 70,
    );
    expect(received).toEqual({ high: 50, low: 20 });
    release();
    await Promise.all([high.close(), low.close()]);
    expect(await depth(queue.queue)).toBe(0);
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

  it('acknowledges before it closes the deliveries that reach it together with the answer to its cancel', async () => {
    const queue = queueSpec();
    const url = new URL(inject('amqpUrl'));
    const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5672) });
    const own = new Connection({ url: viaProxy(url.toString(), proxy.port), retryLow: 100, retryHigh: 500 });
    await own.onConnect(5_000);
    const handled: number[] = [];
    const subscription = await consumeWithBatchedAcks({ ...options(queue), connection: own }, async (m: IncomingMessage) => {
      await new Promise((r) => setTimeout(r, 50));
      handled.push((m.body as { n: number }).n);
    });
    // What the broker sends the consumer waits at its proxy: the deliveries, then the answer to
    // the cancel, all read in one go when released.
    proxy.hold();
    await publish(
      queue.queue,
      Array.from({ length: 10 }, (_, n) => ({ n })),
    );
    await eventually(
      () => depth(queue.queue),
      (n) => n === 0,
    );
    const closed = subscription.close();
    await eventually(
      async () => (await connection.queueDeclare({ queue: queue.queue, durable: true })).consumerCount,
      (n) => n === 0,
    );
    proxy.release();
    await closed;
    await own.close();
    await proxy.close();
    // Each was handled and acknowledged before the channel closed: none came back to the queue.
    expect(handled).toHaveLength(10);
    expect(await depth(queue.queue)).toBe(0);
    await connection.queueDelete({ queue: queue.queue });
  });
});
