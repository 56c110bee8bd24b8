import { AppError } from '@stockflow/platform';
import type { StatusChange } from '../db/status-changes.ts';

/**
 * How many status changes may wait for one subscriber that has not read them; one more and its
 * stream is ended (SubscriberTooSlowError).
 *
 * 2,000 is four times the largest burst one transaction notifies (the payment-hold sweep cancels
 * HOLD_EXPIRY_BATCH = 500 orders at a time, and every instance sweeps): a subscriber that reads
 * at all rides out several sweeps landing between two of its reads. And it bounds what a stalled
 * one holds: about 150 bytes a change (measured, a change as parsed from its notification), so
 * at most ~300 kB per subscriber, a hundred stalled dashboards ~30 MB of a heap capped at 192 MB.
 * Only orderStatusChanges (admins) is offered every change; the others keep only their order's or
 * their customer's, which never come near it.
 */
export const MAX_PENDING_CHANGES = 2_000;

export const STATUS_SUBSCRIPTIONS = ['orderStatusChanges', 'orderStatusChanged', 'customerOrderStatusChanged'] as const;
export type StatusSubscription = (typeof STATUS_SUBSCRIPTIONS)[number];

/**
 * What a stream sends last when its subscriber fell too far behind: the field's resolver throws
 * it, so that the client gets it as the GraphQL error of that event, followed by the stream's end
 * (a stream that fails instead is cut without a word to the client).
 */
export class SubscriberTooSlowError extends AppError {
  constructor(subscription: StatusSubscription, maxPending: number) {
    const again =
      subscription === 'orderStatusChanged'
        ? 'subscribe again: the new stream starts with the order as it is now'
        : 'subscribe again, and read again the orders you show: the changes in between were not sent';
    super('SUBSCRIBER_TOO_SLOW', `this subscriber fell more than ${maxPending} status changes behind, so its stream was ended; ${again}`, {
      details: { maxPendingChanges: maxPending },
    });
  }
}

/** The value itself, or the error it stands for thrown. */
export function unlessTooSlow<T>(item: T | SubscriberTooSlowError): T {
  if (item instanceof SubscriberTooSlowError) throw item;
  return item;
}

export interface StatusFeed {
  /** Offers a change to every subscriber; returns at once whatever they do. */
  publish(change: StatusChange): void;
  /**
   * The changes `accept` keeps, from the first `next()` on (nothing is kept for a stream no one
   * reads yet). `details` (the order or customer followed) are logged if it is ended as too slow.
   */
  subscribe(options: {
    subscription: StatusSubscription;
    accept?: (change: StatusChange) => boolean;
    details?: Record<string, unknown>;
  }): AsyncIterable<StatusChange | SubscriberTooSlowError>;
}

/**
 * The status changes of this instance, handed to each subscriber with a bounded queue of its
 * own. It replaces graphql-yoga's createPubSub, whose streams queue a publish per change for a
 * subscriber that does not read, without bound but for Repeater's limit of 1,024, past which the
 * publish throws inside an EventTarget listener: an uncaught exception, which ended the process.
 * Here a subscriber that falls MAX_PENDING_CHANGES behind is dropped at once (its queue freed),
 * and is sent SubscriberTooSlowError when it reads again; the others are not held up.
 */
export function createStatusFeed(
  options: {
    maxPending?: number;
    /** Once per subscriber ended as too slow. */
    onTooSlow?: (subscription: StatusSubscription, details: Record<string, unknown>) => void;
  } = {},
): StatusFeed {
  const maxPending = options.maxPending ?? MAX_PENDING_CHANGES;
  const offers = new Set<(change: StatusChange) => void>();
  return {
    publish(change) {
      for (const offer of offers) offer(change);
    },
    subscribe({ subscription, accept = () => true, details = {} }) {
      return {
        [Symbol.asyncIterator]() {
          const pending: StatusChange[] = [];
          const waiting: ((step: IteratorResult<StatusChange | SubscriberTooSlowError>) => void)[] = [];
          let started = false;
          let tooSlow: SubscriberTooSlowError | undefined;
          let ended = false;
          const offer = (change: StatusChange) => {
            if (!accept(change)) return;
            const reader = waiting.shift();
            if (reader) reader({ value: change, done: false });
            else if (pending.length < maxPending) pending.push(change);
            else {
              offers.delete(offer);
              pending.length = 0;
              tooSlow = new SubscriberTooSlowError(subscription, maxPending);
              options.onTooSlow?.(subscription, details);
            }
          };
          const end = () => {
            ended = true;
            offers.delete(offer);
            pending.length = 0;
            for (const reader of waiting.splice(0)) reader({ value: undefined, done: true });
          };
          return {
            next() {
              if (!started && !ended) offers.add(offer);
              started = true;
              const change = pending.shift();
              if (change) return Promise.resolve({ value: change, done: false });
              if (tooSlow) {
                const error = tooSlow;
                tooSlow = undefined;
                end();
                return Promise.resolve({ value: error, done: false });
              }
              if (ended) return Promise.resolve({ value: undefined, done: true });
              return new Promise((resolve) => waiting.push(resolve));
            },
            return() {
              tooSlow = undefined;
              end();
              return Promise.resolve({ value: undefined, done: true });
            },
          };
        },
      };
    },
  };
}
