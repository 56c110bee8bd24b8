import { randomUUID } from 'node:crypto';
import { ATTEMPTS_HEADER, DEAD_LETTER_REASON_HEADER, ORIGINAL_ROUTING_KEY_HEADER, type QueueSpec } from '@stockflow/contracts';
import type { IncomingMessage, OutgoingMessage } from './transport.ts';

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
