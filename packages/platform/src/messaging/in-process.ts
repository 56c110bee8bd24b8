import { exchanges, topicMatches, type QueueSpec } from '@stockflow/contracts';
import type { Logger } from '../logger.ts';
import { replayMessage, selected, toDeadLetter } from './dead-letters.ts';
import type { ConsumeOptions, DeliveryHandler, IncomingMessage, OutgoingMessage, Subscription, Transport } from './transport.ts';

interface Queue {
  spec: QueueSpec;
  handler: DeliveryHandler | undefined;
  prefetch: number;
  inFlight: number;
  /** Messages waiting for a consumer or a free slot, each with the publisher waiting on it. */
  waiting: { message: IncomingMessage; delivered: () => void }[];
  /** Parked messages (a DLQ has no consumer in the embedded mode); kept for inspection. */
  stored: IncomingMessage[];
}

/**
 * RabbitMQ's routing for the embedded mode, in one process. The guarantee that matters is kept:
 * `publish` resolves only once every consuming handler has committed, so the outbox marks a row
 * published only after its effect is durable, and a crash before that republishes it at the next
 * start (at least once, to idempotent handlers). A handler that fails is retried after a pause.
 * Queues no consumer ever reads (the dead-letter queues) keep their messages in memory.
 */
export function createInProcessTransport(options: { queues: QueueSpec[]; logger: Logger; retryDelayMs?: number }): Transport {
  const retryDelayMs = options.retryDelayMs ?? 1_000;
  const queues = new Map<string, Queue>();
  const exchangeType = new Map(exchanges.map((e) => [e.exchange, e.type]));
  const declare = (spec: QueueSpec) => {
    if (!queues.has(spec.queue)) queues.set(spec.queue, { spec, handler: undefined, prefetch: 1, inFlight: 0, waiting: [], stored: [] });
  };
  for (const spec of options.queues) {
    declare(spec);
    declare({
      ...spec,
      queue: spec.deadLetterQueue,
      arguments: {},
      bindings: [{ exchange: String(spec.arguments['x-dead-letter-exchange']), routingKey: spec.queue }],
    });
  }
  // Retry queues hold a message for their TTL, then hand it back to their queue; emulated here
  // with a timer (held in memory: lost if the process dies during the wait).
  const retryTiers = new Map(options.queues.flatMap((q) => q.retryQueues.map((r) => [r.queue, { target: q.queue, delayMs: r.delayMs }])));
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;

  const routes = (exchange: string, routingKey: string): Queue[] =>
    exchange === ''
      ? [queues.get(routingKey)].filter((q): q is Queue => q !== undefined)
      : [...queues.values()].filter((q) =>
          q.spec.bindings.some(
            (b) =>
              b.exchange === exchange &&
              (exchangeType.get(exchange) === 'topic' ? topicMatches(b.routingKey, routingKey) : b.routingKey === routingKey),
          ),
        );

  const pump = (queue: Queue) => {
    while (queue.handler && queue.inFlight < queue.prefetch && queue.waiting.length > 0 && !closed) {
      const item = queue.waiting.shift() as Queue['waiting'][number];
      queue.inFlight += 1;
      const handler = queue.handler;
      const attempt = (redelivered: boolean) => {
        handler({ ...item.message, redelivered }).then(
          () => {
            queue.inFlight -= 1;
            item.delivered();
            pump(queue);
          },
          (error: unknown) => {
            options.logger.warn({ err: error, queue: queue.spec.queue }, 'in-process delivery failed; retrying');
            setTimeout(() => (closed ? undefined : attempt(true)), retryDelayMs);
          },
        );
      };
      attempt(false);
    }
  };

  const transport: Transport = {
    async publish(messages: OutgoingMessage[]) {
      if (closed) throw new Error('in-process transport is closed');
      const deliveries: Promise<void>[] = [];
      for (const m of messages) {
        const tier = m.exchange === '' ? retryTiers.get(m.routingKey) : undefined;
        if (tier) {
          const timer = setTimeout(() => {
            timers.delete(timer);
            void transport.publish([{ ...m, exchange: '', routingKey: tier.target }]).catch(() => undefined);
          }, tier.delayMs);
          timers.add(timer);
          continue;
        }
        for (const queue of routes(m.exchange, m.routingKey)) {
          const message: IncomingMessage = {
            // A copy per queue, as a broker would hand each consumer its own bytes.
            body: structuredClone(m.body),
            exchange: m.exchange,
            routingKey: m.routingKey,
            messageId: m.messageId,
            headers: { ...(m.headers ?? {}) },
            redelivered: false,
          };
          if (!queue.handler && queue.spec.queue.endsWith('.dlq')) {
            queue.stored.push(message);
            continue;
          }
          deliveries.push(
            new Promise<void>((delivered) => {
              queue.waiting.push({ message, delivered });
              pump(queue);
            }),
          );
        }
      }
      await Promise.all(deliveries);
    },

    consume(spec: QueueSpec, consumeOptions: ConsumeOptions, handler: DeliveryHandler): Promise<Subscription> {
      declare(spec);
      const queue = queues.get(spec.queue) as Queue;
      queue.handler = handler;
      queue.prefetch = consumeOptions.prefetch;
      pump(queue);
      return Promise.resolve({
        close() {
          queue.handler = undefined;
          return Promise.resolve();
        },
      });
    },

    isConnected: () => !closed,

    deadLetters: {
      list: (spec, limit) =>
        Promise.resolve((queues.get(spec.deadLetterQueue)?.stored ?? []).slice(0, limit).map((m) => toDeadLetter(spec, m))),
      async replay(spec, ids) {
        const dlq = queues.get(spec.deadLetterQueue);
        if (!dlq) return 0;
        const chosen = dlq.stored.filter((m) => selected(ids, m.messageId));
        dlq.stored = dlq.stored.filter((m) => !chosen.includes(m));
        await transport.publish(chosen.map((m) => replayMessage(spec, m)));
        return chosen.length;
      },
      count: (spec) => Promise.resolve(queues.get(spec.deadLetterQueue)?.stored.length ?? 0),
    },

    close() {
      closed = true;
      for (const t of timers) clearTimeout(t);
      return Promise.resolve();
    },
  };
  return transport;
}
