import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ATTEMPTS_HEADER,
  DEAD_LETTER_REASON_HEADER,
  EXCHANGES,
  ROUTING_KEYS,
  type QueueSpec,
  type IncomingMessage,
  type OutgoingMessage,
} from '@stockflow/contracts';
import { eventually } from '@stockflow/testing';
import { createPgliteDatabase, type Database } from '@stockflow/db';
import { createLogger } from '@stockflow/observability';
import { UnroutableError, type Transport } from './transport.ts';
import { createInProcessTransport } from './in-process.ts';

const logger = createLogger({ name: 'test', level: 'silent' });
const RETRY_DELAY_MS = 1_500;

/** A queue of the test's own, its one retry queue's delay short enough to wait for. */
const spec: QueueSpec = {
  queue: 'things',
  durable: true,
  arguments: { 'x-dead-letter-exchange': EXCHANGES.deadLetter, 'x-dead-letter-routing-key': 'things' },
  bindings: [{ exchange: EXCHANGES.orders, routingKey: 'thing.made' }],
  deadLetterQueue: 'things.dlq',
  retryQueues: [{ queue: 'things.retry', delayMs: RETRY_DELAY_MS, arguments: {} }],
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A handler that records each delivery with its time, and resolves (acknowledges) when `settle` says. */
const recorder = (settle: () => Promise<void> = () => Promise.resolve()) => {
  const received: { at: number; message: IncomingMessage }[] = [];
  const handler = (message: IncomingMessage) => {
    received.push({ at: Date.now(), message });
    return settle();
  };
  return { received, handler };
};

/** What `npm start` does across a restart: the transport on its store in a directory, closed and opened again. */
describe('in-process transport with a store', () => {
  let template: string;
  let dir: string;
  let running: { transport: Transport; db: Database } | undefined;

  // Creating a PGlite database takes seconds (initdb); each test starts from a copy of one.
  beforeAll(async () => {
    template = await mkdtemp(path.join(tmpdir(), 'stockflow-broker-template-'));
    await (await createPgliteDatabase(template)).close();
  });
  afterAll(() => rm(template, { recursive: true, force: true }));
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'stockflow-broker-'));
    await cp(template, dir, { recursive: true });
  });
  afterEach(async () => {
    await stop();
    await rm(dir, { recursive: true, force: true });
  });

  const start = async () => {
    const db = await createPgliteDatabase(dir);
    const transport = await createInProcessTransport({ queues: [spec], logger, store: db });
    running = { transport, db };
    return transport;
  };
  /** As the platform closes them: the transport, then its store. */
  async function stop() {
    await running?.transport.close();
    await running?.db.close();
    running = undefined;
  }
  const restart = async () => {
    await stop();
    return start();
  };

  const parked = (id: string, body: unknown): OutgoingMessage => ({
    exchange: EXCHANGES.deadLetter,
    routingKey: spec.queue,
    messageId: id,
    body,
    headers: { [DEAD_LETTER_REASON_HEADER]: `${id} is broken` },
  });
  const delayed = (id: string): OutgoingMessage => ({
    exchange: '',
    routingKey: 'things.retry',
    messageId: id,
    body: { id },
    headers: { [ATTEMPTS_HEADER]: '1' },
  });

  it('keeps parked messages across a restart and replays them from there', async () => {
    const before = await start();
    await before.publish([parked('not-json', '{not json'), parked('object', { n: 1 }), parked('bytes', Buffer.from([0xff, 0x00]))]);

    const after = await restart();
    expect(await after.deadLetters.count(spec)).toBe(3);
    expect(await after.deadLetters.list(spec, 2)).toEqual([
      { id: 'not-json', queue: 'things', reason: 'not-json is broken', routingKey: 'things', body: '{not json' },
      { id: 'object', queue: 'things', reason: 'object is broken', routingKey: 'things', body: '{"n":1}' },
    ]);

    const { received, handler } = recorder();
    await after.consume(spec, { prefetch: 10 }, handler);
    expect(await after.deadLetters.replay(spec, ['not-json', 'bytes'])).toBe(2);
    // Each body comes back as it was parked: a string, bytes.
    expect(received.map((r) => [r.message.messageId, r.message.body, r.message.headers])).toEqual([
      ['not-json', '{not json', {}],
      ['bytes', Buffer.from([0xff, 0x00]), {}],
    ]);

    // Replayed messages are gone from the store, not only from this process.
    const again = await restart();
    expect((await again.deadLetters.list(spec, 10)).map((d) => d.id)).toEqual(['object']);
  });

  it('delivers a delayed message after a restart, when it was due', async () => {
    const before = await start();
    const published = Date.now();
    await before.publish([delayed('later')]);
    await stop();
    await sleep(RETRY_DELAY_MS / 2);

    const after = await start();
    const restarted = Date.now();
    const { received, handler } = recorder();
    await after.consume(spec, { prefetch: 10 }, handler);
    await eventually(
      () => Promise.resolve(received.length),
      (n) => n === 1,
      RETRY_DELAY_MS * 3,
      20,
    );
    const [delivery] = received;
    expect(delivery?.message).toMatchObject({
      exchange: '',
      routingKey: 'things',
      messageId: 'later',
      body: { id: 'later' },
      headers: { [ATTEMPTS_HEADER]: '1' },
    });
    // Not before its time, and at the time it was due: not after a whole delay counted again from the restart.
    expect(delivery?.at).toBeGreaterThanOrEqual(published + RETRY_DELAY_MS - 10);
    expect(delivery?.at).toBeLessThan(restarted + RETRY_DELAY_MS / 2);

    // Handled, it is deleted: the next start, long past its due time, does not deliver it again.
    await sleep(100);
    const again = await restart();
    const later = recorder();
    await again.consume(spec, { prefetch: 10 }, later.handler);
    await sleep(500);
    expect(later.received).toEqual([]);
  });

  it('delivers a delayed message again when the process stopped before its handler finished', async () => {
    const before = await start();
    const never = recorder(() => new Promise<void>(() => undefined));
    await before.consume(spec, { prefetch: 10 }, never.handler);
    await before.publish([delayed('interrupted')]);
    await eventually(
      () => Promise.resolve(never.received.length),
      (n) => n === 1,
      RETRY_DELAY_MS * 3,
      20,
    );

    const after = await restart();
    const { received, handler } = recorder();
    await after.consume(spec, { prefetch: 10 }, handler);
    await eventually(
      () => Promise.resolve(received.map((r) => r.message.messageId)),
      (ids) => ids.length > 0,
      1_000,
      20,
    );
    expect(received.map((r) => r.message.messageId)).toEqual(['interrupted']);
  });
  const made = (id: string): OutgoingMessage => ({ exchange: EXCHANGES.orders, routingKey: 'thing.made', messageId: id, body: { id } });
  const storedRows = async () =>
    (await (running as { db: Database }).db.query<{ n: number }>('SELECT count(*)::int AS n FROM broker_messages')).rows[0]?.n;

  it('stores what a queue without a consumer is sent, confirmed once stored, and delivers it across a restart before anything newer', async () => {
    const before = await start();
    // Resolves although nothing consumes the queue: stored, as a broker would.
    await before.publish([made('first'), made('second')]);
    expect(await before.depth(spec)).toBe(2);

    const after = await restart();
    expect(await after.depth(spec)).toBe(2);
    const { received, handler } = recorder();
    await after.consume(spec, { prefetch: 1 }, handler);
    // Sent while the stored ones are still being handed over: it goes behind them.
    await after.publish([made('third')]);
    await eventually(
      () => Promise.resolve(received.length),
      (n) => n === 3,
    );
    expect(received.map((r) => r.message.messageId)).toEqual(['first', 'second', 'third']);
    expect(received[0]?.message).toMatchObject({ exchange: EXCHANGES.orders, routingKey: 'thing.made', body: { id: 'first' } });
    await eventually(
      () => after.depth(spec),
      (n) => n === 0,
    );

    // Handled, they are deleted: the next start delivers none of them again.
    const again = await restart();
    const later = recorder();
    await again.consume(spec, { prefetch: 10 }, later.handler);
    await sleep(300);
    expect(later.received).toEqual([]);
    expect(await storedRows()).toBe(0);
  });

  it('moves a delayed message that falls due while its queue has no consumer into the queue, for the next consumer', async () => {
    const transport = await start();
    await transport.publish([delayed('due-alone')]);
    expect(await transport.depth(spec)).toBe(0);
    await eventually(
      () => transport.depth(spec),
      (n) => n === 1,
      RETRY_DELAY_MS * 3,
      50,
    );
    const { received, handler } = recorder();
    await transport.consume(spec, { prefetch: 10 }, handler);
    await eventually(
      () => Promise.resolve(received.map((r) => r.message.messageId)),
      (ids) => ids.length === 1,
    );
    expect(received[0]?.message).toMatchObject({
      exchange: '',
      routingKey: 'things',
      messageId: 'due-alone',
      headers: { [ATTEMPTS_HEADER]: '1' },
    });
    await eventually(storedRows, (n) => n === 0);
  });

  it('keeps a stored message until its handler has resolved', async () => {
    const before = await start();
    await before.publish([made('unfinished')]);
    const never = recorder(() => new Promise<void>(() => undefined));
    await before.consume(spec, { prefetch: 10 }, never.handler);
    await eventually(
      () => Promise.resolve(never.received.length),
      (n) => n === 1,
    );

    const after = await restart();
    const { received, handler } = recorder();
    await after.consume(spec, { prefetch: 10 }, handler);
    await eventually(
      () => Promise.resolve(received.length),
      (n) => n === 1,
    );
    expect(received.map((r) => r.message.messageId)).toEqual(['unfinished']);
  });

  it('holds a message for a busy consumer in memory, its publish answered once handled, and stores nothing', async () => {
    const transport = await start();
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    const { received, handler } = recorder(() => released);
    await transport.consume(spec, { prefetch: 1 }, handler);
    let done = 0;
    const published = [transport.publish([made('busy')]), transport.publish([made('queued')])].map((p) => p.then(() => (done += 1)));
    await eventually(
      () => Promise.resolve(received.length),
      (n) => n === 1,
    );
    await sleep(200);
    expect(done).toBe(0);
    expect(await transport.depth(spec)).toBe(1);
    expect(await storedRows()).toBe(0);
    release();
    await Promise.all(published);
    expect(received.map((r) => r.message.messageId)).toEqual(['busy', 'queued']);
    expect(await storedRows()).toBe(0);
  });
});

describe('in-process transport routing', () => {
  it('refuses a message a platform queue is for when that queue is missing, and delivers the rest', async () => {
    const transport = await createInProcessTransport({ queues: [spec], logger });
    const { received, handler } = recorder();
    await transport.consume(spec, { prefetch: 10 }, handler);
    const routed: OutgoingMessage = { exchange: EXCHANGES.orders, routingKey: 'thing.made', messageId: 'routed', body: {} };
    // order.created.inventory is not declared by this transport.
    const created: OutgoingMessage = { exchange: EXCHANGES.orders, routingKey: ROUTING_KEYS.orderCreated, messageId: 'created', body: {} };
    const noQueue: OutgoingMessage = { exchange: '', routingKey: 'no-such-queue', messageId: 'no-queue', body: {} };

    const refused = await transport.publish([routed, created, noQueue]).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(UnroutableError);
    expect((refused as UnroutableError).messages).toEqual([created, noQueue]);
    expect(received.map((r) => r.message.messageId)).toEqual(['routed']);

    // OrderConfirmed is for other teams' queues, none of the platform's: as on RabbitMQ, not refused.
    await transport.publish([{ exchange: EXCHANGES.orders, routingKey: ROUTING_KEYS.orderConfirmed, messageId: 'confirmed', body: {} }]);
    expect(received.map((r) => r.message.messageId)).toEqual(['routed']);
    await transport.close();
  });

  it('when a consumer stops, finishes what it is handling and stores what waits for it, for the next consumer', async () => {
    const transport = await createInProcessTransport({ queues: [spec], logger });
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    const { received, handler } = recorder(() => released);
    const subscription = await transport.consume(spec, { prefetch: 1 }, handler);
    const message = (messageId: string): OutgoingMessage => ({ exchange: EXCHANGES.orders, routingKey: 'thing.made', messageId, body: {} });
    const settled: string[] = [];
    const publish = (id: string) => transport.publish([message(id)]).then(() => settled.push(id));
    // One being handled, one waiting for the prefetch slot.
    const published = [publish('handled'), publish('waiting')];
    await eventually(
      () => Promise.resolve(received.length),
      (n) => n === 1,
    );
    expect(await transport.depth(spec)).toBe(1);

    let closed = false;
    const closing = subscription.close().then(() => (closed = true));
    // The one waiting is stored at once: its publisher (an outbox) is answered, and waits no more.
    await published[1];
    expect(settled).toEqual(['waiting']);
    expect(closed).toBe(false);
    release();
    await closing;
    await published[0];
    // And so is whatever comes for it later, stored behind it.
    await publish('later');
    expect(received.map((r) => r.message.messageId)).toEqual(['handled']);
    expect(await transport.depth(spec)).toBe(2);

    const next = recorder();
    await transport.consume(spec, { prefetch: 10 }, next.handler);
    await eventually(
      () => Promise.resolve(next.received.map((r) => r.message.messageId)),
      (ids) => ids.length === 2,
    );
    expect(next.received.map((r) => r.message.messageId)).toEqual(['waiting', 'later']);
    await eventually(
      () => transport.depth(spec),
      (n) => n === 0,
    );
    await transport.close();
  });

  it('keeps parked messages in memory without a store', async () => {
    const transport = await createInProcessTransport({ queues: [spec], logger });
    await transport.publish([
      { exchange: EXCHANGES.deadLetter, routingKey: spec.queue, messageId: 'p1', body: { n: 1 } },
      { exchange: EXCHANGES.deadLetter, routingKey: spec.queue, messageId: 'p2', body: { n: 2 } },
    ]);
    expect((await transport.deadLetters.list(spec, 10)).map((d) => d.id)).toEqual(['p1', 'p2']);
    const { received, handler } = recorder();
    await transport.consume(spec, { prefetch: 10 }, handler);
    expect(await transport.deadLetters.replay(spec, 'all')).toBe(2);
    expect(received.map((r) => r.message.body)).toEqual([{ n: 1 }, { n: 2 }]);
    expect(await transport.deadLetters.count(spec)).toBe(0);
    await transport.close();
  });
});
