import { describe, expect, it } from 'vitest';
import type { StatusChange } from '../db/status-changes.ts';
import { createStatusFeed, MAX_PENDING_CHANGES, SubscriberTooSlowError } from './status-feed.ts';

const change = (n: number, id = `ORD-${n}`): StatusChange => ({ id, customerId: 'alice', status: 'PENDING' });
/** A step that is still waiting after 50 ms: 'waiting'. */
const settled = <T>(step: Promise<T>) => Promise.race([step, new Promise<'waiting'>((r) => setTimeout(() => r('waiting'), 50))]);

describe('createStatusFeed', () => {
  it('holds up to maxPending changes for a subscriber that does not read, then drops them and ends it with SUBSCRIBER_TOO_SLOW, told once', async () => {
    const told: unknown[] = [];
    const feed = createStatusFeed({ maxPending: 3, onTooSlow: (subscription, details) => told.push({ subscription, details }) });
    const stream = feed.subscribe({ subscription: 'orderStatusChanges', details: { who: 'dashboard' } })[Symbol.asyncIterator]();
    const first = stream.next();
    feed.publish(change(1));
    expect(await first).toEqual({ value: change(1), done: false });

    for (let n = 2; n <= 4; n++) feed.publish(change(n));
    expect(told).toEqual([]);
    for (let n = 5; n <= 10; n++) feed.publish(change(n));
    expect(told).toEqual([{ subscription: 'orderStatusChanges', details: { who: 'dashboard' } }]);

    const last = await stream.next();
    expect(last.value).toBeInstanceOf(SubscriberTooSlowError);
    expect((last.value as SubscriberTooSlowError).code).toBe('SUBSCRIBER_TOO_SLOW');
    expect((last.value as SubscriberTooSlowError).message).toMatch(/more than 3 status changes behind.*subscribe again/);
    expect(await stream.next()).toEqual({ value: undefined, done: true });
    feed.publish(change(11));
    expect(await stream.next()).toEqual({ value: undefined, done: true });
    expect(told).toHaveLength(1);
  });

  it('takes far more than the 1,024 pending pushes a graphql-yoga pub/sub stream allows, without throwing', () => {
    const told: string[] = [];
    const feed = createStatusFeed({ onTooSlow: (subscription) => told.push(subscription) });
    const stalled = feed.subscribe({ subscription: 'orderStatusChanges' })[Symbol.asyncIterator]();
    void stalled.next();
    for (let n = 0; n <= MAX_PENDING_CHANGES + 1; n++) feed.publish(change(n));
    expect(MAX_PENDING_CHANGES).toBeGreaterThan(1_024);
    expect(told).toEqual(['orderStatusChanges']);
  });

  it('holds up no other subscriber', async () => {
    const feed = createStatusFeed({ maxPending: 3 });
    const stalled = feed.subscribe({ subscription: 'orderStatusChanges' })[Symbol.asyncIterator]();
    void stalled.next();
    const reader = feed.subscribe({ subscription: 'orderStatusChanges' })[Symbol.asyncIterator]();
    const read: string[] = [];
    for (let n = 1; n <= 10; n++) {
      const step = reader.next();
      feed.publish(change(n));
      read.push(((await step).value as StatusChange).id);
    }
    expect(read).toEqual(Array.from({ length: 10 }, (_, i) => `ORD-${i + 1}`));
  });

  it('holds only the changes accept keeps, so that others never end a subscriber', async () => {
    const feed = createStatusFeed({ maxPending: 3 });
    const stream = feed.subscribe({ subscription: 'orderStatusChanged', accept: (c) => c.id === 'ORD-mine' })[Symbol.asyncIterator]();
    const first = stream.next();
    feed.publish(change(0, 'ORD-mine'));
    await first;
    for (let n = 1; n <= 100; n++) feed.publish(change(n));
    feed.publish(change(101, 'ORD-mine'));
    expect(await stream.next()).toEqual({ value: change(101, 'ORD-mine'), done: false });
    expect(await settled(stream.next())).toBe('waiting');
  });

  it('keeps nothing before the first read, and nothing once the subscriber left, ending its wait', async () => {
    const feed = createStatusFeed({ maxPending: 3 });
    const stream = feed.subscribe({ subscription: 'customerOrderStatusChanged' })[Symbol.asyncIterator]();
    for (let n = 1; n <= 10; n++) feed.publish(change(n));
    const waiting = stream.next();
    expect(await settled(waiting)).toBe('waiting');
    await stream.return?.();
    expect(await waiting).toEqual({ value: undefined, done: true });
    feed.publish(change(11));
    expect(await stream.next()).toEqual({ value: undefined, done: true });
  });
});
