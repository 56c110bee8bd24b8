import type { IncomingMessage, MessagingPeer, OutgoingMessage, QueueSpec } from '@stockflow/contracts';
import { AppError } from '@stockflow/platform';
import type { DeadLetterStore } from './dead-letters.ts';

/** Resolve to acknowledge; throw to hand the message back for another attempt. */
export type DeliveryHandler = (message: IncomingMessage) => Promise<void>;

export interface ConsumeOptions {
  /** Messages held unacknowledged at once (also the most a batch can gather). */
  prefetch: number;
  /**
   * The consumer's priority on a queue several instances consume (RabbitMQ's `x-priority`): the
   * broker delivers to the highest one until it holds `prefetch` unacknowledged messages, and only
   * then to the next. Equal priorities share deliveries round-robin.
   */
  priority?: number;
}

export interface Subscription {
  /**
   * Takes no new deliveries and resolves once those being handled are acknowledged. When `giveUp`
   * aborts it waits no longer: what is still unacknowledged goes back to the queue.
   */
  close(giveUp?: AbortSignal): Promise<void>;
}

/**
 * Waits for `work` (rejecting as it does), or only until `signal` aborts. The listener it adds to
 * the signal goes again once either comes: a shutdown shares one signal among all its parts, and
 * listeners left on it for work long done piled up (Node's MaxListenersExceededWarning).
 */
export async function untilAborted(work: Promise<unknown> | undefined, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) {
    await work;
    return;
  }
  if (signal.aborted) return;
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<void>((resolve) => (onAbort = resolve));
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await Promise.race([work, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/**
 * How events leave and reach a service. The AMQP transport is RabbitMQ; the embedded mode swaps in
 * an in-process one. Both confirm a publish only once the message is safely routed, and both
 * redeliver whatever a handler did not acknowledge.
 */
export interface Transport {
  /** Resolves once every message is confirmed by the broker; rejects if any is not. */
  publish(messages: OutgoingMessage[]): Promise<void>;
  consume(queue: QueueSpec, options: ConsumeOptions, handler: DeliveryHandler): Promise<Subscription>;
  isConnected(): boolean;
  /**
   * How many messages wait in `queue` for a consumer: RabbitMQ's ready messages (those delivered
   * and not yet acknowledged are not counted); in process, those stored or held for a busy consumer.
   */
  depth(queue: QueueSpec): Promise<number>;
  /** Inspect and replay what consumers parked. */
  deadLetters: DeadLetterStore;
  close(): Promise<void>;
  /** The broker, for the spans of what is published and consumed through it. */
  peer?: MessagingPeer;
}

/**
 * Messages a publish could route to no queue although a platform queue is for them (RabbitMQ
 * returns them, published `mandatory`): a failed publish of those messages only.
 */
export class UnroutableError extends AppError {
  constructor(
    readonly messages: OutgoingMessage[],
    reason: string,
  ) {
    super(
      'UNAVAILABLE',
      `${messages.length} message${messages.length === 1 ? '' : 's'} reached no queue (${reason}): ${[...new Set(messages.map((m) => `${m.exchange || '(default)'}/${m.routingKey}`))].join(', ')}`,
    );
  }
}
