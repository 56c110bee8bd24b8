import type { AsyncMessage, Channel, Connection } from 'rabbitmq-client';
import { queueDeclarations, type QueueSpec, type QueueType, type IncomingMessage } from '@stockflow/contracts';
import type { Logger } from '@stockflow/observability';
import { declareQueue } from './amqp-topology.ts';
import { untilAborted, type DeliveryHandler, type Subscription } from './transport.ts';

export interface AckingConsumerOptions {
  connection: Connection;
  queue: QueueSpec;
  /** How the queue is declared (AMQP_QUEUE_TYPE). */
  queueType: QueueType;
  /** Declared (idempotently) before consuming, so the queue's bindings have their exchanges. */
  exchanges: { exchange: string; type: string; durable: boolean }[];
  prefetch: number;
  /** RabbitMQ's `x-priority` for this consumer (see ConsumeOptions.priority). */
  priority?: number;
  logger: Logger;
  retryLowMs: number;
  retryHighMs: number;
}

/**
 * Acknowledgements of one channel, sent as few frames as possible: what has been settled is
 * acknowledged with one `multiple` ack up to the highest delivery tag below which everything is
 * settled, once per turn of the event loop. A failed delivery is handed back (nack, requeue) at
 * once. Against one ack frame per message this cut the broker's CPU for a consumed message by
 * about 40% on RabbitMQ 3.10 (measured: 20,000 persistent messages, 163 against 97 CPU ticks).
 */
function ackTracker(channel: Channel) {
  // Delivery tags start at 1 on every channel and increase by one per delivery.
  let settledUpTo = 0;
  const settled = new Map<number, 'ack' | 'requeued'>();
  let scheduled = false;

  const flush = () => {
    scheduled = false;
    // The multiple ack names the highest acknowledged tag of the settled prefix: a handed-back
    // delivery is no longer outstanding, and acking only such tags would be an unknown-tag error.
    let ackUpTo: number | undefined;
    for (let next = settled.get(settledUpTo + 1); next; next = settled.get(settledUpTo + 1)) {
      settled.delete(settledUpTo + 1);
      settledUpTo += 1;
      if (next === 'ack') ackUpTo = settledUpTo;
    }
    if (ackUpTo !== undefined && channel.active) channel.basicAck({ deliveryTag: ackUpTo, multiple: true });
  };
  const settle = (tag: number, how: 'ack' | 'requeued') => {
    settled.set(tag, how);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };

  return {
    ack: (tag: number) => settle(tag, 'ack'),
    requeue(tag: number) {
      if (channel.active) channel.basicNack({ deliveryTag: tag, requeue: true });
      settle(tag, 'requeued');
    },
  };
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

const incoming = (msg: AsyncMessage): IncomingMessage => ({
  body: msg.body,
  exchange: msg.exchange,
  routingKey: msg.routingKey,
  messageId: msg.messageId,
  headers: msg.headers ?? {},
  redelivered: msg.redelivered,
  deliveryTag: msg.deliveryTag,
});

/**
 * Consumes a queue on a channel of its own, acknowledging each delivery once its handler resolves
 * (see ackTracker) and handing it back when the handler throws. After the channel or the
 * connection is lost it sets itself up again with backoff; deliveries that were unacknowledged
 * then come back from the broker, to idempotent handlers.
 */
export async function consumeWithBatchedAcks(options: AckingConsumerOptions, handler: DeliveryHandler): Promise<Subscription> {
  const { connection, queue, logger } = options;
  const processing = new Set<Promise<void>>();
  let channel: Channel | undefined;
  let consumerTag: string | undefined;
  let closing = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let retryCount = 0;
  let settingUp: Promise<void> | undefined;

  const run = (acks: ReturnType<typeof ackTracker>, msg: AsyncMessage) => {
    const done = handler(incoming(msg)).then(
      () => acks.ack(msg.deliveryTag),
      (err: unknown) => {
        logger.warn({ err, queue: queue.queue, messageId: msg.messageId }, 'handing a delivery back to the broker');
        acks.requeue(msg.deliveryTag);
      },
    );
    processing.add(done);
    void done.finally(() => processing.delete(done));
  };

  const setup = async () => {
    // Handlers still running belong to the lost channel; their deliveries come back anyway.
    await Promise.allSettled(processing);
    if (closing) return;
    const ch = await connection.acquire({ emitErrorsFromChannel: true });
    ch.on('error', (err: unknown) => logger.warn({ err, queue: queue.queue }, 'amqp consumer channel error'));
    ch.once('close', () => {
      if (channel === ch) channel = undefined;
      reconnect();
    });
    try {
      // On the connection's own channel: a refused declaration closes the channel it was made on.
      await declareQueue((d) => connection.queueDeclare(d), queueDeclarations(queue, options.queueType).main, logger);
      for (const e of options.exchanges) await ch.exchangeDeclare(e);
      for (const b of queue.bindings) await ch.queueBind({ queue: queue.queue, exchange: b.exchange, routingKey: b.routingKey });
      await ch.basicQos({ prefetchCount: options.prefetch });
      const acks = ackTracker(ch);
      const ok = await ch.basicConsume(
        { queue: queue.queue, ...(options.priority === undefined ? {} : { arguments: { 'x-priority': options.priority } }) },
        (msg) => run(acks, msg),
      );
      consumerTag = ok.consumerTag;
      // The broker cancels a consumer whose queue was deleted; start over on a fresh channel.
      ch.once('basic.cancel', () => void ch.close().catch(() => undefined));
      channel = ch;
      retryCount = 0;
    } catch (error) {
      await ch.close().catch(() => undefined);
      throw error;
    }
  };

  function start() {
    retryTimer = undefined;
    settingUp = setup()
      .finally(() => {
        settingUp = undefined;
      })
      .catch((err: unknown) => {
        if (closing) return;
        logger.warn({ err, queue: queue.queue }, 'amqp consumer setup failed; retrying');
        reconnect();
      });
  }

  function reconnect() {
    if (closing || retryTimer || settingUp) return;
    retryCount += 1;
    const delay = Math.min(options.retryHighMs, options.retryLowMs * 2 ** (retryCount - 1));
    retryTimer = setTimeout(start, delay);
  }

  // The first attempt is awaited so that a started service is consuming; if it failed, the
  // retries go on in the background. Without a connection (a service started during a broker
  // outage) it waits for one in the background instead of holding up the start.
  start();
  if (connection.ready) await settingUp;

  return {
    async close(giveUp) {
      closing = true;
      if (retryTimer) clearTimeout(retryTimer);
      await untilAborted(settingUp, giveUp);
      const ch = channel;
      if (ch?.active && consumerTag)
        await untilAborted(
          ch.basicCancel(consumerTag).catch(() => undefined),
          giveUp,
        );
      // rabbitmq-client hands each delivery to us on a later turn of the event loop (setImmediate):
      // those that came just before the cancel's answer join `processing` only then.
      await nextTurn();
      // In-flight deliveries finish and are acknowledged before the channel closes.
      while (processing.size > 0 && !giveUp?.aborted) await untilAborted(Promise.allSettled(processing), giveUp);
      // The acknowledgements go out on the next turn (ackTracker).
      await nextTurn();
      if (ch?.active) await ch.close().catch(() => undefined);
    },
  };
}
