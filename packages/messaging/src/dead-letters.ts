import { randomUUID } from 'node:crypto';
import {
  ATTEMPTS_HEADER,
  DEAD_LETTER_REASON_HEADER,
  EXCHANGES,
  MAX_INT32,
  ORIGINAL_ROUTING_KEY_HEADER,
  type QueueSpec,
  type IncomingMessage,
  type OutgoingMessage,
} from '@stockflow/contracts';

/** A message parked in a dead-letter queue, as an operator sees it. */
export interface DeadLetter {
  /** The message id (the event id for our own events); what `replay` selects by. */
  id: string;
  /** The queue it was parked from; a replay sends it back there. */
  queue: string;
  reason: string;
  routingKey: string;
  /** The body as text. */
  body: string;
  /** For a queue of payment events: what the message says about the money. */
  payment?: ParkedPayment;
}

/** What a parked payment event says about the money, as far as its body can be read (null: it cannot tell). */
export interface ParkedPayment {
  event: 'PaymentSucceeded' | 'PaymentFailed' | null;
  paymentId: string | null;
  orderId: string | null;
  amountCents: number | null;
  currency: string | null;
  /** True: the payment service took this money (PaymentSucceeded); false: a failed attempt took none. */
  moneyTaken: boolean | null;
}

/** Whether a queue receives payment events: a message parked from it may be money taken with no record. */
export const carriesPayments = (queue: QueueSpec): boolean => queue.bindings.some((b) => b.exchange === EXCHANGES.payments);

/**
 * Reads a payment event that could not be applied for what it says about the money: a body that
 * is not the contract (why it was parked, often) still shows what it can, field by field.
 */
export function parkedPayment(body: unknown): ParkedPayment {
  let value: unknown = body;
  if (Buffer.isBuffer(body) || typeof body === 'string') {
    try {
      value = JSON.parse(body.toString());
    } catch {
      value = undefined;
    }
  }
  const fields = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : null);
  const event = fields.event === 'PaymentSucceeded' || fields.event === 'PaymentFailed' ? fields.event : null;
  const amount = fields.amount_cents;
  return {
    event,
    paymentId: text(fields.payment_id),
    orderId: text(fields.order_id),
    amountCents: typeof amount === 'number' && Number.isInteger(amount) && Math.abs(amount) <= MAX_INT32 ? amount : null,
    currency: text(fields.currency),
    moneyTaken: event === null ? null : event === 'PaymentSucceeded',
  };
}

export interface DeadLetterStore {
  /** The first `limit` parked messages of `queue`'s DLQ, oldest first; nothing is removed. */
  list(queue: QueueSpec, limit: number): Promise<DeadLetter[]>;
  /**
   * Sends the chosen parked messages (every one when `ids` is 'all') back to `queue` for another
   * try, with their attempt count reset, and removes them from the DLQ. Returns how many.
   */
  replay(queue: QueueSpec, ids: readonly string[] | 'all'): Promise<number>;
  /** How many messages are parked in `queue`'s DLQ. */
  count(queue: QueueSpec): Promise<number>;
}

export const bodyText = (body: unknown): string =>
  Buffer.isBuffer(body) ? body.toString() : typeof body === 'string' ? body : JSON.stringify(body);

const textHeader = (headers: Record<string, unknown>, name: string): string | undefined => {
  const value = headers[name];
  return typeof value === 'string' ? value : undefined;
};

export function toDeadLetter(
  queue: QueueSpec,
  message: Pick<IncomingMessage, 'body' | 'messageId' | 'headers' | 'routingKey'>,
): DeadLetter {
  return {
    id: message.messageId ?? '(none)',
    queue: queue.queue,
    reason: textHeader(message.headers, DEAD_LETTER_REASON_HEADER) ?? 'rejected without a reason (see its x-death header)',
    routingKey: textHeader(message.headers, ORIGINAL_ROUTING_KEY_HEADER) ?? message.routingKey,
    body: bodyText(message.body),
    ...(carriesPayments(queue) ? { payment: parkedPayment(message.body) } : {}),
  };
}

/**
 * A received message sent on elsewhere (parked, retried, replayed): same body, same id (one is
 * given if it had none, so it can be followed), its string headers (trace context, our own; AMQP's
 * tables are dropped) without `drop`, plus `add`.
 */
export function forward(
  message: Pick<IncomingMessage, 'body' | 'messageId' | 'headers'>,
  to: { exchange: string; routingKey: string },
  headers: { add?: Record<string, string>; drop?: string[] } = {},
): OutgoingMessage {
  const kept = Object.entries(message.headers).filter(
    (e): e is [string, string] => typeof e[1] === 'string' && !(headers.drop ?? []).includes(e[0]),
  );
  return {
    ...to,
    messageId: message.messageId ?? randomUUID(),
    body: message.body,
    headers: { ...Object.fromEntries(kept), ...headers.add },
  };
}

/** The message that puts a parked one back on its queue for a fresh round of attempts. */
export const replayMessage = (queue: QueueSpec, message: Pick<IncomingMessage, 'body' | 'messageId' | 'headers'>): OutgoingMessage =>
  forward(message, { exchange: '', routingKey: queue.queue }, { drop: [ATTEMPTS_HEADER, DEAD_LETTER_REASON_HEADER] });

export const selected = (ids: readonly string[] | 'all', id: string | undefined) => ids === 'all' || (id !== undefined && ids.includes(id));
