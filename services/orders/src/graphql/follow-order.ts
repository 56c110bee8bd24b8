import { Repeater } from 'graphql-yoga';
import type { StatusChange } from '../db/orders.ts';
import { isFinal, type Order } from '../domain/order.ts';

/**
 * One order for `orderStatusChanged`: as it is when the stream starts, then as it is after each
 * change to it; the stream ends after a final status. `read` reads the order (undefined: none).
 *
 * Listening starts before the order is read, so a change committed in between is not lost: it is
 * notified after the read and compared with what was sent. A status is sent once (an order never
 * returns to a status it left), so a change the first read already showed is not sent again.
 * A Repeater rather than an async generator: a subscriber who leaves ends it at once, even while
 * it waits for a change that may never come.
 */
export function followOrder(changes: AsyncIterable<StatusChange>, read: () => Promise<Order | undefined>): Repeater<Order> {
  return new Repeater<Order>(async (push, stop) => {
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
        next = iterator.next();
        if (change.value.id !== sent.id || change.value.status === sent.status) continue;
        const order = await read();
        if (!order || order.status === sent.status) continue;
        sent = order;
        await push(sent);
      }
    } finally {
      stop();
      await iterator.return?.();
    }
  });
}
