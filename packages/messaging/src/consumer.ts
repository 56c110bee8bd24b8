import type { z } from 'zod';
import {
  ATTEMPTS_HEADER,
  DEAD_LETTER_REASON_HEADER,
  deadLetterRoute,
  ORIGINAL_ROUTING_KEY_HEADER,
  type QueueSpec,
  type IncomingMessage,
} from '@stockflow/contracts';
import { createBatcher, AppError, type ServiceConfig } from '@stockflow/platform';
import {
  tally,
  parseTraceparent,
  TRACEPARENT_HEADER,
  type Logger,
  type Metrics,
  type TraceContext,
  type Tracing,
} from '@stockflow/observability';
import { forward } from './dead-letters.ts';
import type { Subscription, Transport } from './transport.ts';

export interface BatchConsumerOptions<T> {
  transport: Transport;
  queue: QueueSpec;
  /** The contract the message must match; anything else is parked in the queue's DLQ. */
  schema: z.ZodType<T>;
  /**
   * Applies a batch in one go (one transaction); resolve only after the commit. `traces[i]` is
   * the trace context `items[i]` arrived with (its `traceparent` header), if any; with tracing on,
   * its process span, a child of that context.
   */
  handleBatch(items: T[], traces: (TraceContext | undefined)[]): Promise<void>;
  logger: Logger;
  prefetch: number;
  /** The priority of this consumer among the instances consuming the queue (ConsumeOptions.priority). */
  priority?: number;
  maxBatch: number;
  /**
   * Batches applied at once. Deliveries arriving while they run wait and form the next batch, so
   * batches grow with the load and an idle consumer applies a lone message at once.
   */
  batchesInFlight: number;
  /** Pause before handing a message back to the broker when even scheduling its retry failed. */
  failureDelayMs: number;
  /** Attempts before a message whose handler keeps failing is parked in the DLQ. */
  maxAttempts: number;
  /**
   * Resolves when the database may be tried again (its circuit breaker). A batch that failed
   * because the database is down waits here and is applied again, its messages still
   * unacknowledged: the consumer takes no new work meanwhile and drops nothing.
   */
  waitUntilAvailable?: () => Promise<void>;
  /** Told of each message once it is parked in the DLQ (what it is, and why), for a service's own metrics. */
  onParked?: (message: IncomingMessage, reason: string) => void;
  metrics?: Metrics;
  tracing?: Tracing | undefined;
}

/** A service's consumers' settings, from its configuration; each consumer adds its queue, contract and handler. */
export function serviceConsumerOptions(
  config: ServiceConfig,
  runtime: Pick<BatchConsumerOptions<unknown>, 'transport' | 'logger' | 'waitUntilAvailable' | 'metrics' | 'tracing'>,
): Omit<BatchConsumerOptions<unknown>, 'queue' | 'schema' | 'handleBatch'> {
  return {
    ...runtime,
    prefetch: config.CONSUMER_PREFETCH,
    priority: config.CONSUMER_PRIORITY,
    maxBatch: config.CONSUMER_BATCH_SIZE,
    batchesInFlight: config.CONSUMER_BATCHES_IN_FLIGHT,
    failureDelayMs: 1_000,
    maxAttempts: config.RETRY_MAX_ATTEMPTS,
  };
}

const isOutage = (error: unknown) => error instanceof AppError && error.code === 'UNAVAILABLE';

type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

export function decodeBody<T>(body: unknown, schema: z.ZodType<T>): Decoded<T> {
  let value = body;
  if (Buffer.isBuffer(body) || typeof body === 'string') {
    const text = body.toString();
    try {
      value = JSON.parse(text);
    } catch (error) {
      return { ok: false, reason: `body is not JSON: ${(error as Error).message}` };
    }
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    return { ok: false, reason: `body does not match the contract: ${issues.join('; ')}` };
  }
  return { ok: true, value: parsed.data };
}

/** A retried message comes back from its retry queue under the queue's name; keep where it first came from. */
const originalRoutingKey = (message: IncomingMessage) => {
  const kept = message.headers[ORIGINAL_ROUTING_KEY_HEADER];
  return typeof kept === 'string' ? kept : message.routingKey;
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Delivery<T> {
  value: T;
  message: IncomingMessage;
}

/** The order, event and correlation (trace) id a message belongs to, for its log lines. */
export function flowOf(message: IncomingMessage): { order_id?: string; event_id?: string; correlation_id?: string } {
  const body = message.body as { order_id?: unknown; event_id?: unknown } | null;
  const trace = parseTraceparent(message.headers[TRACEPARENT_HEADER]);
  return {
    ...(typeof body?.order_id === 'string' ? { order_id: body.order_id } : {}),
    ...(typeof body?.event_id === 'string' ? { event_id: body.event_id } : {}),
    ...(trace ? { correlation_id: trace.traceId } : {}),
  };
}

/** The event type of a message, for metrics: the contract's `event` field. */
const eventOf = (body: unknown): string => {
  const event = (body as { event?: unknown } | null)?.event;
  return typeof event === 'string' ? event : 'unknown';
};

const asError = (error: unknown) => (error instanceof Error ? error : new Error(String(error)));

/**
 * Consumes a queue in batches. Each delivery is acknowledged only when the batch holding it has
 * been committed; a message that is not JSON or breaks the contract is parked in the queue's DLQ
 * with the reason in a header (confirmed before the original is acknowledged) and the consumer
 * carries on. When a batch fails, its messages are retried one by one so that a single bad one
 * cannot hold back the others.
 */
export async function startBatchConsumer<T>(options: BatchConsumerOptions<T>): Promise<Subscription> {
  const { transport, queue, logger, metrics } = options;
  const counted = (event: string, outcome: 'applied' | 'retried' | 'parked' | 'requeued', n = 1) =>
    metrics?.messagesConsumed.inc({ queue: queue.queue, event, outcome }, n);
  const park = async (message: IncomingMessage, reason: string) => {
    logger.warn({ queue: queue.queue, messageId: message.messageId, ...flowOf(message), reason }, 'parking message in dead-letter queue');
    await transport.publish([
      forward(message, deadLetterRoute(queue), {
        add: { [DEAD_LETTER_REASON_HEADER]: reason, [ORIGINAL_ROUTING_KEY_HEADER]: originalRoutingKey(message) },
      }),
    ]);
    options.onParked?.(message, reason);
  };

  /**
   * The handler failed on this message alone: send it to wait in a retry queue (longer each
   * time) and acknowledge it, so the messages behind it carry on; after `maxAttempts`, park it.
   */
  const retryLater = async (message: IncomingMessage, error: unknown) => {
    const attempts = Number(message.headers[ATTEMPTS_HEADER] ?? 0) + 1;
    const why = error instanceof Error ? error.message : String(error);
    if (attempts >= options.maxAttempts) {
      await park(message, `handler failed ${attempts} times; last error: ${why}`);
      counted(eventOf(message.body), 'parked');
      return;
    }
    const tier = queue.retryQueues[Math.min(attempts, queue.retryQueues.length) - 1];
    if (!tier) throw new Error(`queue ${queue.queue} has no retry queues`);
    logger.warn(
      { queue: queue.queue, messageId: message.messageId, ...flowOf(message), attempts, retryInMs: tier.delayMs, err: error },
      'handler failed; will retry',
    );
    await transport.publish([
      forward(
        message,
        { exchange: '', routingKey: tier.queue },
        { add: { [ATTEMPTS_HEADER]: String(attempts), [ORIGINAL_ROUTING_KEY_HEADER]: originalRoutingKey(message) } },
      ),
    ]);
    counted(eventOf(message.body), 'retried');
  };

  let closing = false;
  let closed: () => void = () => undefined;
  const whenClosing = new Promise<void>((resolve) => (closed = resolve));

  /** Applies a batch; one result per delivery: acknowledge it (undefined) or hand it back (an Error). */
  const settle = async (batch: Delivery<T>[]): Promise<(undefined | Error)[]> => {
    const traced = options.tracing?.processing(
      queue.queue,
      batch.map((d) => d.message),
      transport.peer,
    );
    try {
      const stopTimer = metrics?.batchDuration.startTimer({ queue: queue.queue });
      await options.handleBatch(
        batch.map((d) => d.value),
        traced?.traces ?? batch.map((d) => parseTraceparent(d.message.headers[TRACEPARENT_HEADER])),
      );
      traced?.applied();
      stopTimer?.();
      metrics?.batchSize.observe({ queue: queue.queue }, batch.length);
      for (const [event, n] of tally(batch, (d) => eventOf(d.value))) counted(event, 'applied', n);
      return batch.map(() => undefined);
    } catch (error) {
      traced?.failed(error);
      if (isOutage(error) && options.waitUntilAvailable) {
        if (!closing) {
          logger.warn({ queue: queue.queue, size: batch.length }, 'database unavailable; holding the batch until it is back');
          await Promise.race([options.waitUntilAvailable(), whenClosing]);
        }
        // Shutting down: waiting for the database would only hold up the exit, and another
        // instance (or this one's restart) applies the batch once it is back.
        if (!closing) return settle(batch);
        logger.warn({ queue: queue.queue, size: batch.length }, 'database unavailable at shutdown; handing the batch back to the broker');
        for (const [event, n] of tally(batch, (d) => eventOf(d.value))) counted(event, 'requeued', n);
        return batch.map(() => asError(error));
      }
      const [only] = batch;
      if (batch.length === 1 && only) {
        try {
          await retryLater(only.message, error);
          return [undefined];
        } catch (retryError) {
          logger.error({ err: retryError, queue: queue.queue }, 'could not schedule a retry; the broker will redeliver');
          await sleep(options.failureDelayMs);
          counted(eventOf(only.value), 'requeued');
          return [asError(error)];
        }
      }
      logger.warn({ err: error, queue: queue.queue, size: batch.length }, 'batch failed; retrying its messages one by one');
    }
    return (await Promise.all(batch.map((d) => settle([d])))).flat();
  };

  const batcher = createBatcher<Delivery<T>, undefined>({
    maxBatch: options.maxBatch,
    maxInFlight: options.batchesInFlight,
    run: settle,
  });

  const subscription = await transport.consume(queue, { prefetch: options.prefetch, priority: options.priority }, async (message) => {
    const decoded = decodeBody(message.body, options.schema);
    if (!decoded.ok) {
      await park(message, decoded.reason);
      counted('invalid', 'parked');
      return;
    }
    await batcher.submit({ value: decoded.value, message });
  });
  metrics?.consumersUp.set({ queue: queue.queue }, 1);
  return {
    async close(giveUp) {
      closing = true;
      closed();
      await subscription.close(giveUp);
      metrics?.consumersUp.set({ queue: queue.queue }, 0);
    },
  };
}
