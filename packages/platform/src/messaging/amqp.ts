import type { Socket } from 'node:net';
import { Connection, type Publisher, type SyncMessage } from 'rabbitmq-client';
import { exchanges as topologyExchanges, JSON_CONTENT_TYPE, type QueueSpec } from '@stockflow/contracts';
import { safeUrl } from '../config.ts';
import { AppError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { consumeWithBatchedAcks } from './amqp-consumer.ts';
import { coalesceWrites } from './coalesce.ts';
import { selected, replayMessage, toDeadLetter, type DeadLetter } from './dead-letters.ts';
import type { ConsumeOptions, DeliveryHandler, OutgoingMessage, Subscription, Transport } from './transport.ts';

export interface AmqpOptions {
  url: string;
  /** Every queue this service's topology needs declared before its first publish. */
  queues: QueueSpec[];
  connectionName: string;
  logger: Logger;
}

const declareExchanges = () => topologyExchanges.map((e) => ({ exchange: e.exchange, type: e.type, durable: e.durable }));

/**
 * Queues and their parking queues are declared by publishers too: an event published before its
 * consumer ever started must still be routed to a durable queue, not dropped as unroutable.
 */
function declarations(queues: QueueSpec[]) {
  return {
    exchanges: declareExchanges(),
    queues: queues.flatMap((q) => [
      { queue: q.queue, durable: q.durable, arguments: q.arguments },
      { queue: q.deadLetterQueue, durable: true },
      ...q.retryQueues.map((r) => ({ queue: r.queue, durable: true, arguments: r.arguments })),
    ]),
    queueBindings: queues.flatMap((q) => [
      ...q.bindings.map((b) => ({ queue: q.queue, exchange: b.exchange, routingKey: b.routingKey })),
      { queue: q.deadLetterQueue, exchange: q.arguments['x-dead-letter-exchange'] as string, routingKey: q.queue },
    ]),
  };
}

const parked = (m: SyncMessage) => ({
  body: m.body as unknown,
  messageId: m.messageId,
  headers: m.headers ?? {},
  routingKey: m.routingKey,
});

export function encodeBody(body: unknown): Buffer {
  if (Buffer.isBuffer(body)) return body;
  return Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
}

/** Reconnection backoff, for the connection and for consumers setting themselves up again. */
const RETRY_LOW_MS = 200;
const RETRY_HIGH_MS = 10_000;

export async function createAmqpTransport(options: AmqpOptions): Promise<Transport> {
  const { logger } = options;
  const connection = new Connection({
    url: options.url,
    connectionName: options.connectionName,
    retryLow: RETRY_LOW_MS,
    retryHigh: RETRY_HIGH_MS,
    heartbeat: 15,
  });
  connection.on('error', (err: unknown) => logger.warn({ err }, 'amqp connection error'));
  // Each (re)connection has a new socket; rabbitmq-client keeps it in a private field.
  const coalesced = new WeakSet<Socket>();
  connection.on('connection', () => {
    const socket = (connection as unknown as { _socket: Socket })._socket;
    if (!coalesced.has(socket)) {
      coalesced.add(socket);
      coalesceWrites(socket);
    }
    logger.info('amqp connected');
  });

  const topology = declarations(options.queues);
  const publisher: Publisher = connection.createPublisher({ confirm: true, maxAttempts: 1, ...topology });
  const consumers = new Set<Subscription>();

  // Fail fast at start when the broker is unreachable, and have every queue in place before the
  // first publish or consume; the publisher declares it all again after each reconnect.
  try {
    await connection.onConnect(10_000);
  } catch (error) {
    throw new AppError('UNAVAILABLE', `cannot reach RabbitMQ at ${safeUrl(options.url)}: ${(error as Error).message}`, { cause: error });
  }
  for (const e of topology.exchanges) await connection.exchangeDeclare(e);
  for (const q of topology.queues) await connection.queueDeclare(q);
  for (const b of topology.queueBindings) await connection.queueBind(b);

  const transport: Transport = {
    async publish(messages: OutgoingMessage[]) {
      // Streamed: every publish is in flight at once and the confirms arrive together.
      await Promise.all(
        messages.map((m) =>
          publisher.send(
            {
              exchange: m.exchange,
              routingKey: m.routingKey,
              messageId: m.messageId,
              contentType: JSON_CONTENT_TYPE,
              durable: true,
              headers: m.headers,
              timestamp: Math.floor(Date.now() / 1000),
            },
            encodeBody(m.body),
          ),
        ),
      );
    },

    async consume(queue: QueueSpec, consumeOptions: ConsumeOptions, handler: DeliveryHandler): Promise<Subscription> {
      const consumer = await consumeWithBatchedAcks(
        {
          connection,
          queue,
          exchanges: topology.exchanges,
          prefetch: consumeOptions.prefetch,
          priority: consumeOptions.priority,
          logger,
          retryLowMs: RETRY_LOW_MS,
          retryHighMs: RETRY_HIGH_MS,
        },
        handler,
      );
      consumers.add(consumer);
      return {
        async close() {
          consumers.delete(consumer);
          await consumer.close();
        },
      };
    },

    isConnected: () => connection.ready,

    deadLetters: {
      async list(queue, limit) {
        const channel = await connection.acquire();
        try {
          const out: DeadLetter[] = [];
          // Taken without acknowledging and handed back when the channel closes: a look, not a move.
          while (out.length < limit) {
            const message = await channel.basicGet({ queue: queue.deadLetterQueue });
            if (!message) break;
            out.push(toDeadLetter(queue, parked(message)));
          }
          return out;
        } finally {
          await channel.close();
        }
      },
      async replay(queue, ids) {
        const channel = await connection.acquire();
        let replayed = 0;
        try {
          for (;;) {
            const message = await channel.basicGet({ queue: queue.deadLetterQueue });
            if (!message) break;
            if (!selected(ids, message.messageId)) continue;
            // Confirmed back on its queue before it leaves the DLQ: a crash in between duplicates, never loses.
            await transport.publish([replayMessage(queue, parked(message))]);
            channel.basicAck({ deliveryTag: message.deliveryTag });
            replayed += 1;
          }
          return replayed;
        } finally {
          // Everything not replayed goes back to the DLQ.
          await channel.close();
        }
      },
      async count(queue) {
        const { messageCount } = await connection.queueDeclare({ queue: queue.deadLetterQueue, passive: true });
        return messageCount;
      },
    },

    async close() {
      await Promise.all([...consumers].map((c) => c.close()));
      // A publisher still waiting for a channel (the broker is unreachable) rejects its close with
      // that wait's error; there is nothing open to close then, and the connection goes next.
      await publisher.close().catch((err: unknown) => logger.debug({ err }, 'publisher had no channel to close'));
      await connection.close();
    },
  };
  return transport;
}
