import { randomInt } from 'node:crypto';
import type { Socket } from 'node:net';
import { Connection, type Publisher, type SyncMessage } from 'rabbitmq-client';
import { JSON_CONTENT_TYPE, platformQueueFor, type QueueSpec, type QueueType, type OutgoingMessage } from '@stockflow/contracts';
import { parseBrokerUrls, AppError } from '@stockflow/platform';
import { safeUrl, type Logger } from '@stockflow/observability';
import { consumeWithBatchedAcks } from './amqp-consumer.ts';
import { connectionTarget, declarations, declareExchanges, declareQueue } from './amqp-topology.ts';
import { coalesceWrites } from './coalesce.ts';
import { selected, replayMessage, toDeadLetter, type DeadLetter } from './dead-letters.ts';
import { UnroutableError, type ConsumeOptions, type DeliveryHandler, type Subscription, type Transport } from './transport.ts';

export interface AmqpOptions {
  /** One node's URL, or the comma-separated URLs of a cluster's nodes (see env.amqpUrls). */
  url: string;
  /** Every queue this service's topology needs declared before its first publish. */
  queues: QueueSpec[];
  /** How those queues are declared (AMQP_QUEUE_TYPE). */
  queueType: QueueType;
  connectionName: string;
  logger: Logger;
  /**
   * Start even when no node answers, and connect once one does (the services: the Order Service
   * takes orders meanwhile, its outbox keeping the events). Tools fail at once instead.
   */
  startWithoutBroker?: boolean;
}

/** How long one node may take to accept a connection before the next is tried. */
const CONNECT_TIMEOUT_MS = 5_000;

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
/** At most one new publishing channel in this long when the broker keeps refusing publishes. */
const PUBLISHER_REPLACE_INTERVAL_MS = 5_000;
/** How long a replaced channel stays open for the confirms it still owes (the outbox waits 5 s for one). */
const RETIRED_PUBLISHER_CLOSE_MS = 10_000;

export async function createAmqpTransport(options: AmqpOptions): Promise<Transport> {
  const { logger } = options;
  const target = connectionTarget(options.url);
  // Each process starts at a node of its own, then goes round the list: connections, and the
  // quorum queues RabbitMQ places on the node that declares them, spread over the cluster.
  const first = randomInt(target.hosts.length);
  const connection = new Connection({
    ...target,
    hosts: [...target.hosts.slice(first), ...target.hosts.slice(0, first)],
    connectionTimeout: CONNECT_TIMEOUT_MS,
    connectionName: options.connectionName,
    retryLow: RETRY_LOW_MS,
    retryHigh: RETRY_HIGH_MS,
    heartbeat: 15,
  });
  connection.on('error', (err: unknown) => logger.warn({ err }, 'amqp connection error'));
  // Each (re)connection has a new socket; rabbitmq-client keeps it in a private field.
  const coalesced = new WeakSet<Socket>();
  const topology = declarations(options.queues, options.queueType);
  const declareTopology = async () => {
    for (const e of declareExchanges()) await connection.exchangeDeclare(e);
    for (const q of topology.queues) await declareQueue((d) => connection.queueDeclare(d), q, logger);
    for (const b of topology.queueBindings) await connection.queueBind(b);
  };
  let starting = true;
  let declaredAtStart = false;
  connection.on('connection', () => {
    const socket = (connection as unknown as { _socket: Socket })._socket;
    if (!coalesced.has(socket)) {
      coalesced.add(socket);
      coalesceWrites(socket);
    }
    logger.info({ node: `${socket.remoteAddress}:${socket.remotePort}` }, 'amqp connected');
    // After a reconnect (perhaps to another node) the queues are declared again: one may have been
    // deleted meanwhile. The declarations of a connection made at start are awaited below instead.
    if (!starting) declareInBackground();
  });
  const declareInBackground = () =>
    void declareTopology().catch((err: unknown) => logger.warn({ err }, 'declaring the topology after a reconnect failed'));

  // A message's return arrives before its confirm, but rabbitmq-client emits the return on a
  // later turn of the event loop (setImmediate) than it settles the confirm: publish waits one
  // turn more before it asks whether a message came back. Counted per id, since one message may
  // be in flight twice (a relay's retry beside a slow first try).
  const returned = new Map<string, { count: number; reason: string }>();
  const newPublisher = (): Publisher => {
    const created = connection.createPublisher({ confirm: true, maxAttempts: 1, exchanges: declareExchanges() });
    created.on('basic.return', (msg) => {
      if (!msg.messageId) return;
      const seen = returned.get(msg.messageId);
      returned.set(msg.messageId, { count: (seen?.count ?? 0) + 1, reason: `${msg.replyCode} ${msg.replyText}` });
    });
    return created;
  };
  let publisher = newPublisher();
  let closing = false;
  /** Replaced publishers, each closed once the confirms it still owes are in (or at the transport's close). */
  const retired = new Map<Publisher, NodeJS.Timeout>();
  let replacedAt = 0;
  let replacements = 0;
  const retire = (old: Publisher) => {
    retired.delete(old);
    return old.close().catch((err: unknown) => logger.debug({ err }, 'closing a replaced publisher failed'));
  };
  /**
   * A refused publish (basic.nack) gets the next ones a new channel. On RabbitMQ 3.10, after the
   * node a publisher was connected to died while it published, the channel its reconnect opened
   * went on refusing every publish to one quorum queue for 45 s and more, though every queue had
   * a leader again, while a new channel was served at once (reproduced by hand on the test
   * cluster; amqp-cluster.int.test.ts). The old channel stays open for what is in flight on it:
   * closing it at once would fail other callers' messages to healthy queues. A queue that refuses
   * for good reason (no majority, a length limit) would otherwise get a new channel per batch:
   * one replacement per PUBLISHER_REPLACE_INTERVAL_MS at most.
   */
  const replaceRefusingPublisher = (refusing: Publisher) => {
    if (closing || publisher !== refusing || Date.now() - replacedAt < PUBLISHER_REPLACE_INTERVAL_MS) return;
    replacedAt = Date.now();
    replacements += 1;
    publisher = newPublisher();
    logger.warn({ replacements }, 'the broker refused a publish: publishing on a new channel');
    retired.set(refusing, setTimeout(() => void retire(refusing), RETIRED_PUBLISHER_CLOSE_MS).unref());
  };
  const takeReturn = (messageId: string): string | undefined => {
    const seen = returned.get(messageId);
    if (!seen) return undefined;
    if (seen.count > 1) seen.count -= 1;
    else returned.delete(messageId);
    return seen.reason;
  };
  const consumers = new Set<Subscription>();
  const routed = new Map<string, boolean>();
  const mandatory = (exchange: string, routingKey: string) => {
    const key = `${exchange}\u0000${routingKey}`;
    let expected = routed.get(key);
    if (expected === undefined) routed.set(key, (expected = platformQueueFor(exchange, routingKey)));
    return expected;
  };

  // Every queue in place before the first publish or consume (and again after each reconnect).
  // Every node gets its chance before the broker counts as unreachable.
  try {
    await connection.onConnect(target.hosts.length * CONNECT_TIMEOUT_MS + 2_000, options.startWithoutBroker);
    await declareTopology();
    declaredAtStart = true;
  } catch (error) {
    if (!options.startWithoutBroker || connection.ready) {
      await connection.close().catch(() => undefined);
      throw new AppError('UNAVAILABLE', `cannot reach RabbitMQ at ${safeUrl(options.url)}: ${(error as Error).message}`, { cause: error });
    }
    logger.warn(
      { broker: safeUrl(options.url) },
      'no RabbitMQ node answers; starting without it: events wait in the outbox and consumers start once a node is reached',
    );
  } finally {
    starting = false;
  }
  // Connected between the wait's end and here: declare for that connection too.
  if (connection.ready && !declaredAtStart) declareInBackground();

  // A cluster's node is whichever one the connection reached, which the client does not tell: named only when there is one.
  const [only, ...others] = parseBrokerUrls(options.url).map((n) => n.node);
  const transport: Transport = {
    peer: {
      system: 'rabbitmq',
      ...(only && others.length === 0 ? { address: only.host, port: only.port } : {}),
    },
    async publish(messages: OutgoingMessage[]) {
      // Streamed: every publish is in flight at once and the confirms arrive together. Mandatory
      // where the platform has a queue for the message: the broker confirms a message no queue
      // took (its queue deleted, or not declared yet) as readily as a stored one, and only a
      // return tells them apart. Events no queue of ours is for (OrderConfirmed, for other teams)
      // are not expected to be routed, and not refused for it.
      const sending = publisher;
      const results = await Promise.allSettled(
        messages.map((m) =>
          sending.send(
            {
              exchange: m.exchange,
              routingKey: m.routingKey,
              mandatory: mandatory(m.exchange, m.routingKey),
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
      await new Promise((resolve) => setImmediate(resolve));
      const failed = results.find((r) => r.status === 'rejected');
      if (results.some((r) => r.status === 'rejected' && (r.reason as { code?: unknown }).code === 'NACK'))
        replaceRefusingPublisher(sending);
      const unroutable: OutgoingMessage[] = [];
      let reason = '';
      results.forEach((r, i) => {
        const m = messages[i] as OutgoingMessage;
        const returnedWhy = takeReturn(m.messageId);
        if (r.status === 'fulfilled' && returnedWhy) {
          unroutable.push(m);
          reason = returnedWhy;
        }
      });
      if (failed) throw failed.reason;
      if (unroutable.length > 0) throw new UnroutableError(unroutable, reason);
    },

    async consume(queue: QueueSpec, consumeOptions: ConsumeOptions, handler: DeliveryHandler): Promise<Subscription> {
      const consumer = await consumeWithBatchedAcks(
        {
          connection,
          queue,
          queueType: options.queueType,
          exchanges: declareExchanges(),
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
        async close(giveUp) {
          consumers.delete(consumer);
          await consumer.close(giveUp);
        },
      };
    },

    isConnected: () => connection.ready,

    async depth(queue) {
      const { messageCount } = await connection.queueDeclare({ queue: queue.queue, passive: true });
      return messageCount;
    },

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
          // Only what was parked when the replay began: a replayed message that fails again is parked
          // again behind them, and taken again it would be replayed in a loop for as long as it fails.
          const { messageCount } = await channel.queueDeclare({ queue: queue.deadLetterQueue, passive: true });
          for (let taken = 0; taken < messageCount; taken += 1) {
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
      closing = true;
      await Promise.all([...consumers].map((c) => c.close()));
      for (const timer of retired.values()) clearTimeout(timer);
      await Promise.all([...retired.keys()].map(retire));
      // A publisher still waiting for a channel (the broker is unreachable) rejects its close with
      // that wait's error; there is nothing open to close then, and the connection goes next.
      await publisher.close().catch((err: unknown) => logger.debug({ err }, 'publisher had no channel to close'));
      await connection.close();
    },
  };
  return transport;
}
