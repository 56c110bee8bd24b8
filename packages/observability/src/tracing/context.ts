import { randomBytes } from 'node:crypto';

/**
 * W3C trace context, carried in the `traceparent` header of HTTP requests and AMQP messages, so
 * one order can be followed from createOrder through the Inventory Service's answer to the Order
 * Service's OrderConfirmed. Its trace id is the correlation id on every log line of the flow.
 */
export interface TraceContext {
  traceId: string;
  spanId: string;
  /** The traceparent's sampled flag: false when the trace's spans are not to be recorded. */
  sampled: boolean;
  /**
   * Set on a span that tracing (OpenTelemetry) started: an event continues it as it is and its
   * publish span becomes its child. Without it an event takes a span id of its own.
   */
  traced?: true;
}

export const TRACEPARENT_HEADER = 'traceparent';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZEROS = /^0+$/;

/** The context in a `traceparent` value, or undefined when it is absent or malformed. */
export function parseTraceparent(value: unknown): TraceContext | undefined {
  const match = typeof value === 'string' ? TRACEPARENT.exec(value.trim()) : null;
  if (!match?.[1] || !match[2] || !match[3] || ZEROS.test(match[1]) || ZEROS.test(match[2])) return undefined;
  return { traceId: match[1], spanId: match[2], sampled: (parseInt(match[3], 16) & 1) === 1 };
}

// Every event takes a new span id; a randomBytes call for each was 3% of the Order Service's CPU
// at peak (about 9 us a call), so ids are cut from a larger draw of the same generator.
let entropy = Buffer.alloc(0);
let used = 0;
function randomHex(bytes: number): string {
  if (used + bytes > entropy.length) {
    entropy = randomBytes(4_096);
    used = 0;
  }
  used += bytes;
  return entropy.toString('hex', used - bytes, used);
}

/** A new span in the parent's trace, or the first span of a new trace. */
export function childOf(parent: TraceContext | undefined): TraceContext {
  return { traceId: parent?.traceId ?? randomHex(16), spanId: randomHex(8), sampled: parent?.sampled ?? true };
}

export const formatTraceparent = (trace: TraceContext): string => `00-${trace.traceId}-${trace.spanId}-${trace.sampled ? '01' : '00'}`;

/**
 * Message headers for an event of `parent`'s trace: a new span of it, or, when tracing started
 * `parent`, `parent` itself, which the event's publish span (started by the outbox) continues.
 * None for an event nothing traced caused (a payment hold that ran out, found by a timer): a span
 * id made up here would be the parent of its publish span, one that no service ever reports, so
 * the outbox starts its trace when it publishes it (withTraceparent, or a root publish span).
 */
export const traceHeaders = (parent: TraceContext | undefined): Record<string, string> =>
  parent ? { [TRACEPARENT_HEADER]: formatTraceparent(parent.traced ? parent : childOf(parent)) } : {};

/** The message as it is when it has a traceparent, else with the first span of a new trace. */
export function withTraceparent<M extends { headers?: Record<string, string> | undefined }>(message: M): M {
  if (message.headers?.[TRACEPARENT_HEADER]) return message;
  return { ...message, headers: { ...message.headers, [TRACEPARENT_HEADER]: formatTraceparent(childOf(undefined)) } };
}

/**
 * The trace each order's events continue, from a batch of deliveries and the trace each arrived
 * with (`traces[i]` for `items[i]`); an order delivered twice keeps its first.
 */
export function tracesByOrder(
  items: readonly { order_id: string }[],
  traces: readonly (TraceContext | undefined)[],
): Map<string, TraceContext | undefined> {
  const byOrder = new Map<string, TraceContext | undefined>();
  items.forEach((item, i) => {
    if (!byOrder.has(item.order_id)) byOrder.set(item.order_id, traces[i]);
  });
  return byOrder;
}
