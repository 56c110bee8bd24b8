import path from 'node:path';
import {
  deadLetterRoute,
  exchanges,
  platformQueueFor,
  topicMatches,
  type QueueSpec,
  type IncomingMessage,
  type OutgoingMessage,
} from '@stockflow/contracts';
import { migrate, migrationSource, type Database } from '@stockflow/db';
import type { Logger } from '@stockflow/observability';
import {
  UnroutableError,
  untilAborted,
  type ConsumeOptions,
  type DeliveryHandler,
  type Subscription,
  type Transport,
} from './transport.ts';
import { replayMessage, toDeadLetter } from './dead-letters.ts';
import { memoryHold, tableHold, type Held } from './in-process-hold.ts';

/** The table of the in-process transport's store (`broker_messages`). */
export const brokerMigrations = migrationSource('broker', path.join(import.meta.dirname, 'migrations', 'broker'));

/** The `messaging.system.name` of the in-process transport's spans (a value of ours: OpenTelemetry has none for it). */
export const IN_PROCESS_MESSAGING_SYSTEM = 'stockflow.in_process';

export interface InProcessOptions {
  queues: QueueSpec[];
  logger: Logger;
  retryDelayMs?: number;
  /**
   * Where the messages no consumer took are kept (its own database: the broker's messages are no
   * service's data), so that they outlive the process. Without one they are kept in memory.
   */
  store?: Database;
}

/** A message held in memory for a consumer, in the order it is to be taken. */
interface Waiting {
  message: IncomingMessage;
  /** Its row in the store, when it was taken from there: deleted once handled, kept if the consumer stops first. */
  storedId?: number;
  /** Its consumer has handled (acknowledged) it. */
  handled(): void;
  /** Its consumer stopped before taking it. */
  stop(): void;
}

interface Queue {
  spec: QueueSpec;
  handler: DeliveryHandler | undefined;
  /** Resolves when the current consumer stops. */
  detached: Promise<void>;
  detach: () => void;
  prefetch: number;
  inFlight: number;
  /** The deliveries being handled, each resolved once handled. */
  handling: Set<Promise<void>>;
  /** Messages held in memory for a busy consumer. */
  waiting: Waiting[];
  /** Stored messages its consumer has taken and that are not deleted yet: no longer waiting, still in the store. */
  taken: Set<number>;
  /**
   * The store may hold messages for it: new ones are stored behind them, so that its consumer
   * takes them all in order, until the store has none left for it.
   */
  backlog: boolean;
  /** Writes of its messages to the store under way, and how many were ever started. */
  storing: Set<Promise<unknown>>;
  stores: number;
  /** Its stored messages being handed to its consumer. */
  draining: boolean;
}

/** How many stored messages of a queue are read at once to be handed to its consumer. */
const STORED_BATCH = 100;

/**
 * RabbitMQ's routing for the embedded mode, in one process. A message for a queue whose consumer
 * is there is handed to it in memory, and `publish` resolves once every such handler has
 * committed, so the outbox marks a row published only after its effect is durable, and a crash
 * before that republishes it at the next start (at least once, to idempotent handlers). A handler
 * that fails is retried after a pause. A message meant for one of the platform's queues that
 * reaches none fails its publish, as on RabbitMQ (where it is published mandatory); one meant for
 * none of them (OrderConfirmed, for other teams) is dropped.
 *
 * What no consumer takes is written to the store before `publish` resolves, as a broker stores
 * it: a message for a queue nothing consumes (a refund request for the payment service, a parked
 * message in a DLQ, an answer for a service that has stopped), and a delayed one (a retry queue
 * holds a message for its TTL, then hands it back to its queue; emulated here with a timer, set
 * again from the store at the next start). A queue's stored messages go to its consumer when one
 * attaches, oldest first and before anything newer, each deleted only once its handler resolved
 * (a parked one once its replay did). A consumer acknowledges the original once the publish that
 * parked or delayed it resolved, so the stored copy is then the only one. A crash in between
 * duplicates, never loses.
 */
export async function createInProcessTransport(options: InProcessOptions): Promise<Transport> {
  const { logger } = options;
  const retryDelayMs = options.retryDelayMs ?? 1_000;
  if (options.store) await migrate(options.store, [brokerMigrations]);
  const hold = options.store ? tableHold(options.store) : memoryHold();
  /** Where messages stored before this start wait: their consumers take those first. */
  const backlogged = new Set(await hold.queuesWaiting());
  const queues = new Map<string, Queue>();
  const retryTiers = new Map<string, { target: string; delayMs: number }>();
  const exchangeType = new Map(exchanges.map((e) => [e.exchange, e.type]));
  const add = (spec: QueueSpec) => {
    if (!queues.has(spec.queue))
      queues.set(spec.queue, {
        spec,
        handler: undefined,
        detached: Promise.resolve(),
        detach: () => undefined,
        prefetch: 1,
        inFlight: 0,
        handling: new Set(),
        waiting: [],
        taken: new Set(),
        backlog: backlogged.has(spec.queue),
        storing: new Set(),
        stores: 0,
        draining: false,
      });
  };
  /** A queue with its DLQ and its retry queues, as a publisher of RabbitMQ declares them. */
  const declare = (spec: QueueSpec) => {
    add(spec);
    add({
      ...spec,
      queue: spec.deadLetterQueue,
      arguments: {},
      bindings: [deadLetterRoute(spec)],
      retryQueues: [],
    });
    for (const r of spec.retryQueues) retryTiers.set(r.queue, { target: spec.queue, delayMs: r.delayMs });
  };
  for (const spec of options.queues) declare(spec);
  const timers = new Set<NodeJS.Timeout>();
  /** Reads and writes of the store under way: closing waits for them, so that none finds the store closed. */
  const writes = new Set<Promise<unknown>>();
  let closed = false;

  const tracked = <T>(write: Promise<T>): Promise<T> => {
    writes.add(write);
    void write.catch(() => undefined).finally(() => writes.delete(write));
    return write;
  };
  const later = (fn: () => void, ms: number) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };

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
      const item = queue.waiting.shift() as Waiting;
      queue.inFlight += 1;
      if (item.storedId !== undefined) queue.taken.add(item.storedId);
      const handler = queue.handler;
      const handled = new Promise<void>((done) => {
        const attempt = (redelivered: boolean) => {
          handler({ ...item.message, redelivered }).then(
            () => {
              queue.inFlight -= 1;
              item.handled();
              done();
              pump(queue);
            },
            (error: unknown) => {
              logger.warn({ err: error, queue: queue.spec.queue }, 'in-process delivery failed; retrying');
              setTimeout(() => (closed ? undefined : attempt(true)), retryDelayMs);
            },
          );
        };
        attempt(false);
      });
      queue.handling.add(handled);
      void handled.finally(() => queue.handling.delete(handled));
    }
  };

  /**
   * Writes `write` does to the store for `affected`: from now on their new messages are stored
   * behind these, and their consumers take them from there.
   */
  const storingFor = <T>(affected: Iterable<Queue>, write: Promise<T>): Promise<T> => {
    const targets = new Set(affected);
    for (const queue of targets) {
      queue.backlog = true;
      queue.stores += 1;
      queue.storing.add(write);
    }
    return tracked(write).finally(() => {
      for (const queue of targets) {
        queue.storing.delete(write);
        drain(queue);
      }
    });
  };
  const store = (entries: { queue?: Queue; held: Omit<Held, 'id'> }[]): Promise<Held[]> =>
    entries.length === 0
      ? Promise.resolve([])
      : storingFor(
          entries.flatMap((e) => (e.queue ? [e.queue] : [])),
          hold.add(entries.map((e) => e.held)),
        );
  const waitingIn = (queue: Queue, message: IncomingMessage): Omit<Held, 'id'> => ({ queue: queue.spec.queue, dueAt: undefined, message });

  /** Deletes what a consumer has handled; once closed it stays, and is delivered again at the next start. */
  const forget = (id: number, message: IncomingMessage) =>
    closed
      ? Promise.resolve()
      : tracked(hold.remove([id])).catch((error: unknown) =>
          // It stays stored and is delivered again: a duplicate consumers absorb.
          logger.warn({ err: error, messageId: message.messageId }, 'deleting a delivered message from the store failed'),
        );

  /** Hands a queue's stored messages to its consumer, oldest first, until the store has none left for it. */
  const drain = (queue: Queue) => {
    if (!queue.handler || !queue.backlog || queue.draining || closed) return;
    queue.draining = true;
    const { handler, detached } = queue;
    const attached = () => queue.handler === handler && !closed;
    const run = async () => {
      while (attached()) {
        // Every write begun before the read is seen by it; one begun after is counted.
        const stores = queue.stores;
        await Promise.allSettled(queue.storing);
        const rows = await tracked(hold.waiting(queue.spec.queue, 'all', STORED_BATCH));
        if (!attached()) return;
        if (rows.length === 0) {
          if (queue.stores !== stores) continue;
          queue.backlog = false;
          return;
        }
        const outcomes = rows.map(
          (row) =>
            new Promise<'handled' | 'stopped'>((resolve) =>
              queue.waiting.push({
                message: row.message,
                storedId: row.id,
                handled: () =>
                  void forget(row.id, row.message).finally(() => {
                    queue.taken.delete(row.id);
                    resolve('handled');
                  }),
                stop: () => resolve('stopped'),
              }),
            ),
        );
        pump(queue);
        // A consumer that stops leaves the rest stored; one whose handler never ends holds up nothing.
        await Promise.race([Promise.all(outcomes), detached]);
      }
    };
    run().then(
      () => {
        queue.draining = false;
        // Its consumer changed meanwhile: the new one takes what is left.
        drain(queue);
      },
      (error: unknown) => {
        queue.draining = false;
        if (closed) return;
        logger.warn({ err: error, queue: queue.spec.queue }, 'reading stored messages failed; trying again');
        later(() => drain(queue), retryDelayMs);
      },
    );
  };

  /** Hands a message to the queue's consumer; resolves once it is handled, or, if the consumer stops first, stored. */
  const deliver = (queue: Queue, message: IncomingMessage) =>
    new Promise<void>((delivered, failed) => {
      queue.waiting.push({
        message,
        handled: delivered,
        stop: () => void store([{ queue, held: waitingIn(queue, message) }]).then(() => delivered(), failed),
      });
      pump(queue);
    });

  /** A delayed message, now due, waits in its queue's store: its consumer is away, or behind stored messages. */
  const release = (queue: Queue, held: Held) =>
    void storingFor([queue], hold.release(held.id)).catch((error: unknown) =>
      logger.warn(
        { err: error, messageId: held.message.messageId },
        'moving a delayed message to its queue failed; kept for the next start',
      ),
    );

  const schedule = (held: Held) => {
    if (closed) return;
    later(
      () => {
        const queue = queues.get(held.message.routingKey);
        if (!queue) {
          // Kept in the store: a start that declares its queue again delivers it.
          logger.warn({ queue: held.message.routingKey, messageId: held.message.messageId }, 'delayed message for an unknown queue; kept');
          return;
        }
        if (!queue.handler || queue.backlog) return release(queue, held);
        queue.waiting.push({
          message: held.message,
          handled: () => void forget(held.id, held.message),
          stop: () => release(queue, held),
        });
        pump(queue);
      },
      Math.max(0, (held.dueAt ?? 0) - Date.now()),
    );
  };

  const transport: Transport = {
    // Not RabbitMQ, though it routes as it does: a name of its own, so that no span claims a broker that was never there.
    peer: { system: IN_PROCESS_MESSAGING_SYSTEM },
    async publish(messages: OutgoingMessage[]) {
      if (closed) throw new Error('in-process transport is closed');
      const deliveries: Promise<void>[] = [];
      const stored: { queue?: Queue; held: Omit<Held, 'id'> }[] = [];
      const unroutable: OutgoingMessage[] = [];
      for (const m of messages) {
        const copy = (exchange: string, routingKey: string): IncomingMessage => ({
          // A copy per queue, as a broker would hand each consumer its own bytes (structuredClone
          // would turn a Buffer into a plain Uint8Array).
          body: Buffer.isBuffer(m.body) ? Buffer.from(m.body) : structuredClone(m.body),
          exchange,
          routingKey,
          messageId: m.messageId,
          headers: { ...(m.headers ?? {}) },
          redelivered: false,
        });
        const tier = m.exchange === '' ? retryTiers.get(m.routingKey) : undefined;
        if (tier) {
          stored.push({ held: { queue: m.routingKey, dueAt: Date.now() + tier.delayMs, message: copy('', tier.target) } });
          continue;
        }
        const targets = routes(m.exchange, m.routingKey);
        // Only where the AMQP transport publishes mandatory: OrderConfirmed, for other teams, may reach no queue.
        if (targets.length === 0 && platformQueueFor(m.exchange, m.routingKey)) unroutable.push(m);
        for (const queue of targets) {
          const message = copy(m.exchange, m.routingKey);
          // Waiting in memory only for a consumer that is there, and behind nothing stored.
          if (queue.handler && !queue.backlog) deliveries.push(deliver(queue, message));
          else stored.push({ queue, held: waitingIn(queue, message) });
        }
      }
      for (const h of await store(stored)) if (h.dueAt !== undefined) schedule(h);
      await Promise.all(deliveries);
      // As RabbitMQ does with a mandatory publish: the others are delivered, these are refused.
      if (unroutable.length > 0) throw new UnroutableError(unroutable, 'no queue bound in process');
    },

    consume(spec: QueueSpec, consumeOptions: ConsumeOptions, handler: DeliveryHandler): Promise<Subscription> {
      declare(spec);
      const queue = queues.get(spec.queue) as Queue;
      queue.handler = handler;
      queue.detached = new Promise<void>((resolve) => (queue.detach = resolve));
      queue.prefetch = consumeOptions.prefetch;
      // Whatever the store kept for it (from before a restart, or while it had no consumer) comes first.
      drain(queue);
      return Promise.resolve({
        async close(giveUp) {
          queue.handler = undefined;
          queue.detach();
          // What waits for it is stored, as a broker keeps a queue's messages when its consumer
          // goes (another service stopping in this process): its publishers are answered, and
          // the next consumer (the next start) takes it.
          for (const item of queue.waiting.splice(0)) item.stop();
          await untilAborted(Promise.allSettled(queue.handling), giveUp);
        },
      });
    },

    isConnected: () => !closed,

    async depth(spec) {
      const stored = await hold.count(spec.queue);
      const queue = queues.get(spec.queue);
      if (!queue) return stored;
      // Stored and taken is being handled, not waiting; a message in memory waits unless it is stored too.
      return stored - queue.taken.size + queue.waiting.filter((w) => w.storedId === undefined).length;
    },

    deadLetters: {
      list: async (spec, limit) => (await hold.waiting(spec.deadLetterQueue, 'all', limit)).map((h) => toDeadLetter(spec, h.message)),
      async replay(spec, ids) {
        const chosen = await hold.waiting(spec.deadLetterQueue, ids);
        await transport.publish(chosen.map((h) => replayMessage(spec, h.message)));
        await hold.remove(chosen.map((h) => h.id));
        return chosen.length;
      },
      count: (spec) => hold.count(spec.deadLetterQueue),
    },

    async close() {
      closed = true;
      for (const t of timers) clearTimeout(t);
      await Promise.allSettled(writes);
    },
  };

  const delayed = await hold.delayed();
  for (const h of delayed) schedule(h);
  if (delayed.length > 0) logger.info({ count: delayed.length }, 'delayed messages from before the restart scheduled again');
  return transport;
}
