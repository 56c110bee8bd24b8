import { describe, expect, it } from 'vitest';
import { awaitingStock, type Order, type OrderStatus } from '../domain/order.ts';
import { followOrder } from './follow-order.ts';
import { createStatusFeed, type StatusFeed, SubscriberTooSlowError } from './status-feed.ts';

/** What orderStatusChanged subscribes to for ORD-1. */
const changesOf = (feed: StatusFeed, id = 'ORD-1') => feed.subscribe({ subscription: 'orderStatusChanged', accept: (c) => c.id === id });

const order = (status: OrderStatus): Order => ({
  seq: 1,
  id: 'ORD-1',
  customerId: 'alice',
  status,
  reason: null,
  items: [{ product_id: 1, quantity: 1 }],
  pricedItems: null,
  totalCents: null,
  currency: null,
  paymentDueAt: null,
  paidAt: null,
  createdAt: new Date(0),
  updatedAt: new Date(0),
});

/** Every status the stream sends until it ends, or what it had sent when it stopped sending for 2 s. */
async function statusesOf(
  stream: AsyncIterable<Order | SubscriberTooSlowError>,
): Promise<{ sent: (OrderStatus | 'TOO SLOW')[]; ended: boolean }> {
  const sent: (OrderStatus | 'TOO SLOW')[] = [];
  const iterator = stream[Symbol.asyncIterator]();
  for (;;) {
    const step = await Promise.race([iterator.next(), new Promise<'silent'>((r) => setTimeout(() => r('silent'), 2_000))]);
    if (step === 'silent') {
      await iterator.return?.();
      return { sent, ended: false };
    }
    if (step.done) return { sent, ended: true };
    sent.push(step.value instanceof SubscriberTooSlowError ? 'TOO SLOW' : step.value.status);
  }
}

describe('followOrder', () => {
  it('loses no change committed while the order is first read, and sends the state it had read before it', async () => {
    const feed = createStatusFeed();
    // The database as the stream sees it: the first read returns CONFIRMED while the cancellation
    // commits and is notified; every later read returns CANCELLED.
    let reads = 0;
    const read = () => {
      reads += 1;
      if (reads > 1) return Promise.resolve(order('CANCELLED'));
      feed.publish({ id: 'ORD-1', customerId: 'alice', status: 'CANCELLED' });
      return Promise.resolve(order('CONFIRMED'));
    };
    expect(await statusesOf(followOrder(changesOf(feed), read))).toEqual({
      sent: ['CONFIRMED', 'CANCELLED'],
      ended: true,
    });
  });

  it('sends each status once, skips other orders, and ends after a final status', async () => {
    const feed = createStatusFeed();
    let current: OrderStatus = 'PENDING';
    const stream = followOrder(changesOf(feed), () => Promise.resolve(order(current)));
    const result = statusesOf(stream);
    // Each change committed, notified, and given time to be read before the next.
    const change = async (id: string, status: OrderStatus) => {
      if (id === 'ORD-1') current = status;
      feed.publish({ id, customerId: 'alice', status });
      await new Promise((r) => setTimeout(r, 20));
    };
    await change('ORD-1', 'CONFIRMED');
    await change('ORD-1', 'CONFIRMED');
    await change('ORD-2', 'CANCELLED');
    await change('ORD-1', 'PAID');
    await change('ORD-1', 'FULFILLED');
    expect(await result).toEqual({ sent: ['PENDING', 'CONFIRMED', 'PAID', 'FULFILLED'], ended: true });
  });

  it('sends the order again once its last backordered units arrived, and for no other change that keeps its status', async () => {
    const feed = createStatusFeed();
    let current: Order = { ...order('CONFIRMED'), pricedItems: [{ product_id: 1, quantity: 1, backordered_quantity: 1 }] };
    const sent: boolean[] = [];
    const stream = followOrder(changesOf(feed), () => Promise.resolve(current));
    const iterator = stream[Symbol.asyncIterator]();
    // What the stream sends next, or 'silent' after 200 ms (the pull still waits for the next call).
    let pull: ReturnType<typeof iterator.next> | undefined;
    const next = async () => {
      pull ??= iterator.next();
      const step = await Promise.race([pull, new Promise<'silent'>((r) => setTimeout(() => r('silent'), 200))]);
      if (step === 'silent') return step;
      pull = undefined;
      if (!step.done && !(step.value instanceof SubscriberTooSlowError)) sent.push(awaitingStock(step.value));
      return step;
    };
    await next();
    // A change that is neither a new status nor the stock's arrival (as another instance repeats one) is not sent.
    feed.publish({ id: 'ORD-1', customerId: 'alice', status: 'CONFIRMED' });
    expect(await next()).toBe('silent');
    current = { ...current, pricedItems: [{ product_id: 1, quantity: 1, backordered_quantity: 0 }] };
    feed.publish({ id: 'ORD-1', customerId: 'alice', status: 'CONFIRMED', stockArrived: true });
    await next();
    // The same told again: nothing new to send.
    feed.publish({ id: 'ORD-1', customerId: 'alice', status: 'CONFIRMED', stockArrived: true });
    expect(await next()).toBe('silent');
    await iterator.return?.();
    // awaitingStock as sent: first true, then false.
    expect(sent).toEqual([true, false]);
  });

  it('sends an order already final once and ends', async () => {
    const feed = createStatusFeed();
    expect(await statusesOf(followOrder(changesOf(feed), () => Promise.resolve(order('CANCELLED'))))).toEqual({
      sent: ['CANCELLED'],
      ended: true,
    });
  });

  it('ends at once when the subscriber leaves while it waits for a change', async () => {
    const feed = createStatusFeed();
    const iterator = followOrder(changesOf(feed), () => Promise.resolve(order('CONFIRMED')))[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.done || first.value instanceof SubscriberTooSlowError ? undefined : first.value.status).toBe('CONFIRMED');
    const waiting = iterator.next();
    await new Promise((r) => setTimeout(r, 20));
    const left = await Promise.race([
      iterator.return(undefined).then(() => 'ended'),
      new Promise((r) => setTimeout(() => r('stuck'), 1_000)),
    ]);
    expect(left).toBe('ended');
    expect(await waiting).toEqual({ done: true, value: undefined });
  });

  it('is not ended by other orders changing while it waits for its subscriber to take a status', async () => {
    const feed = createStatusFeed({ maxPending: 3 });
    let current: OrderStatus = 'PENDING';
    const iterator = followOrder(changesOf(feed), () => Promise.resolve(order(current)))[Symbol.asyncIterator]();
    // PENDING taken: the stream goes on only when its subscriber asks for more, which it does not
    // while other orders change.
    await iterator.next();
    for (let n = 2; n <= 20; n++) feed.publish({ id: `ORD-${n}`, customerId: 'alice', status: 'CANCELLED' });
    current = 'CANCELLED';
    feed.publish({ id: 'ORD-1', customerId: 'alice', status: 'CANCELLED' });
    expect(await statusesOf({ [Symbol.asyncIterator]: () => iterator })).toEqual({ sent: ['CANCELLED'], ended: true });
  });

  it('sends SUBSCRIBER_TOO_SLOW on and ends when its own changes wait past the limit', async () => {
    const feed = createStatusFeed({ maxPending: 1 });
    let current: OrderStatus = 'PENDING';
    const iterator = followOrder(changesOf(feed), () => Promise.resolve(order(current)))[Symbol.asyncIterator]();
    await iterator.next();
    // CONFIRMED is taken from the feed, the next two wait there: one more than the limit.
    current = 'CONFIRMED';
    for (const status of ['CONFIRMED', 'PAID', 'FULFILLED'] as const) feed.publish({ id: 'ORD-1', customerId: 'alice', status });
    expect(await statusesOf({ [Symbol.asyncIterator]: () => iterator })).toEqual({ sent: ['CONFIRMED', 'TOO SLOW'], ended: true });
  });
});
