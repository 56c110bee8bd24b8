import { Repeater } from 'graphql-yoga';
import type { StatusChange } from '../db/status-changes.ts';
import { awaitingStock, isFinal, type Order } from '../domain/order.ts';
import { SubscriberTooSlowError } from './status-feed.ts';

/**
 * One order for `orderStatusChanged`: as it is when the stream starts, then as it is after each
 * change of its status, and once its last backordered units arrived (it may ship now); the stream
 * ends after a final status. `read` reads the order (undefined: none).
 *
 * Listening starts before the order is read, so a change committed in between is not lost: it is
 * notified after the read and compared with what was sent. A status is sent once (an order never
 * returns to a status it left), and so is the arrival of its stock (awaitingStock never turns true
 * again), so a change the first read already showed is not sent again.
 * A Repeater rather than an async generator: a subscriber who leaves ends it at once, even while
 * it waits for a change that may never come.
 *
 * `changes` should be this order's only: they wait in it while the order is read and while what
 * was sent is not taken yet, and other orders' would wait there as well. A SubscriberTooSlowError
 * among them is sent on, and ends the stream.
 */
export function followOrder(
  changes: AsyncIterable<StatusChange | SubscriberTooSlowError>,
  read: () => Promise<Order | undefined>,
): Repeater<Order | SubscriberTooSlowError> {
  return new Repeater<Order | SubscriberTooSlowError>(async (push, stop) => {
    const iterator = changes[Symbol.asyncIterator]();
    // The first pull starts the listening (a pub/sub stream subscribes lazily).
    let next = iterator.next();
    // Leaving ends the wait for the next change too.
    void stop.then(() => iterator.return?.());
    try {
      let sent = await read();
      if (!sent) return;
      await push(sent);
      while (!isFinal(sent.status)) {
        const change = await next;
        if (change.done) return;
        if (change.value instanceof SubscriberTooSlowError) {
          await push(change.value);
          return;
        }
        next = iterator.next();
        if (change.value.id !== sent.id || (change.value.status === sent.status && !change.value.stockArrived)) continue;
        const order = await read();
        if (!order || (order.status === sent.status && awaitingStock(order) === awaitingStock(sent))) continue;
        sent = order;
        await push(sent);
      }
    } finally {
      stop();
      await iterator.return?.();
    }
  });
}
