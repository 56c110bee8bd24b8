import path from 'node:path';
import { deadLetterRoute, exchanges, platformQueueFor, topicMatches, type QueueSpec } from '@stockflow/contracts';
import type { Database } from '../db/database.ts';
import { migrate, migrationSource } from '../db/migrate.ts';
import type { Logger } from '../logger.ts';
import { UnroutableError, whenAborted } from './transport.ts';
import { replayMessage, selected, toDeadLetter } from './dead-letters.ts';
import type { ConsumeOptions, DeliveryHandler, IncomingMessage, OutgoingMessage, Subscription, Transport } from './transport.ts';

/** The table of the in-process transport's store (`broker_messages`). */
export const brokerMigrations = migrationSource('broker', path.join(import.meta.dirname, 'migrations'));

/** The `messaging.system.name` of the in-process transport's spans (a value of ours: OpenTelemetry has none for it). */
export const IN_PROCESS_MESSAGING_SYSTEM = 'stockflow.in_process';

export interface InProcessOptions {
  queues: QueueSpec[];
  logger: Logger;
  retryDelayMs?: number;
  /**
   * Where parked and delayed messages are kept (its own database: the broker's messages are no
   * service's data), so that they outlive the process. Without one they are kept in memory.
   */
  store?: Database;
}

interface Queue {
  spec: QueueSpec;
  handler: DeliveryHandler | undefined;
  prefetch: number;
  inFlight: number;
  /** The deliveries being handled, each resolved once handled. */
  handling: Set<Promise<void>>;
  /** Its consumer has stopped: a message for it is refused rather than kept waiting (see `close`). */
  stopped: boolean;
  /** Messages waiting for a consumer or a free slot, each with the publisher waiting on it. */
  waiting: { message: IncomingMessage; delivered: () => void; refused: (error: Error) => void }[];
}

/** A message held rather than handed to a consumer: parked in a DLQ, or waiting in a retry queue. */
interface Held {
  id: number;
  /** The dead-letter or retry queue holding it. */
  queue: string;
  /** When a delayed message goes back to its queue (ms since the epoch); undefined for a parked one. */
  dueAt: number | undefined;
  /** As it is delivered: a delayed one through the default exchange, keyed by its queue's name. */
  message: IncomingMessage;
}

/** Where held messages are kept: a table of the store, or memory. */
interface Hold {
  add(held: Omit<Held, 'id'>[]): Promise<Held[]>;
  remove(ids: number[]): Promise<void>;
  /** Parked messages of `queue`, oldest first. */
  parked(queue: string, ids: readonly string[] | 'all', limit?: number): Promise<Held[]>;
  count(queue: string): Promise<number>;
  delayed(): Promise<Held[]>;
}

function memoryHold(): Hold {
  let nextId = 1;
  let held: Held[] = [];
  return {
    add(rows) {
      const added = rows.map((r) => ({ ...r, id: nextId++ }));
      held.push(...added);
      return Promise.resolve(added);
    },
    remove(ids) {
      held = held.filter((h) => !ids.includes(h.id));
      return Promise.resolve();
    },
    parked: (queue, ids, limit) =>
      Promise.resolve(held.filter((h) => h.queue === queue && h.dueAt === undefined && selected(ids, h.message.messageId)).slice(0, limit)),
    count: (queue) => Promise.resolve(held.filter((h) => h.queue === queue).length),
    delayed: () => Promise.resolve(held.filter((h) => h.dueAt !== undefined)),
  };
}

interface HeldRow {
  id: number;
  queue: string;
  exchange: string;
  routing_key: string;
  message_id: string | null;
  headers: Record<string, unknown>;
  body_type: 'buffer' | 'string' | 'json';
  body: Uint8Array;
  due_at: Date | null;
}

const storedBody = (body: unknown): { type: HeldRow['body_type']; bytes: Buffer } =>
  Buffer.isBuffer(body)
    ? { type: 'buffer', bytes: body }
    : typeof body === 'string'
      ? { type: 'string', bytes: Buffer.from(body) }
      : { type: 'json', bytes: Buffer.from(JSON.stringify(body) ?? 'null') };

const heldFrom = (r: HeldRow): Held => {
  const bytes = Buffer.from(r.body);
  return {
    id: r.id,
    queue: r.queue,
    dueAt: r.due_at?.getTime(),
    message: {
      body: r.body_type === 'buffer' ? bytes : r.body_type === 'string' ? bytes.toString() : (JSON.parse(bytes.toString()) as unknown),
      exchange: r.exchange,
      routingKey: r.routing_key,
      messageId: r.message_id ?? undefined,
      headers: r.headers,
      redelivered: false,
    },
  };
};

const HELD_COLUMNS = 'id, queue, exchange, routing_key, message_id, headers, body_type, body, due_at';

function tableHold(db: Database): Hold {
  return {
    async add(rows) {
      if (rows.length === 0) return [];
      const records = rows.map((h) => {
        const body = storedBody(h.message.body);
        return {
          queue: h.queue,
          exchange: h.message.exchange,
          routing_key: h.message.routingKey,
          message_id: h.message.messageId ?? null,
          headers: h.message.headers,
          body_type: body.type,
          body: body.bytes.toString('base64'),
          due_at: h.dueAt === undefined ? null : new Date(h.dueAt).toISOString(),
        };
      });
      const { rows: inserted } = await db.query<{ id: number }>(
        `INSERT INTO broker_messages (queue, exchange, routing_key, message_id, headers, body_type, body, due_at)
         SELECT queue, exchange, routing_key, message_id, headers, body_type, decode(body, 'base64'), due_at
         FROM json_to_recordset($1::json)
           AS x(queue text, exchange text, routing_key text, message_id text, headers json, body_type text, body text, due_at timestamptz)
         RETURNING id`,
        [JSON.stringify(records)],
      );
      // Identities are drawn in the order the rows are inserted, which is the order given.
      const ids = inserted.map((r) => r.id).sort((a, b) => a - b);
      return rows.map((h, i) => ({ ...h, id: ids[i] as number }));
    },
    async remove(ids) {
      if (ids.length > 0) await db.query('DELETE FROM broker_messages WHERE id = ANY($1::bigint[])', [ids]);
    },
    async parked(queue, ids, limit) {
      const { rows } = await db.query<HeldRow>(
        `SELECT ${HELD_COLUMNS} FROM broker_messages
         WHERE queue = $1 AND due_at IS NULL AND ($2::text[] IS NULL OR message_id = ANY($2::text[]))
         ORDER BY id LIMIT $3`,
        [queue, ids === 'all' ? null : ids, limit ?? null],
      );
      return rows.map(heldFrom);
    },
    async count(queue) {
      const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM broker_messages WHERE queue = $1', [queue]);
      return rows[0]?.n ?? 0;
    },
    async delayed() {
      const { rows } = await db.query<HeldRow>(`SELECT ${HELD_COLUMNS} FROM broker_messages WHERE due_at IS NOT NULL ORDER BY due_at, id`);
      return rows.map(heldFrom);
    },
  };
}

/**
 * RabbitMQ's routing for the embedded mode, in one process. The guarantee that matters is kept:
 * `publish` resolves only once every consuming handler has committed, so the outbox marks a row
 * published only after its effect is durable, and a crash before that republishes it at the next
 * start (at least once, to idempotent handlers). A handler that fails is retried after a pause.
 * A message meant for one of the platform's queues that reaches none fails its publish, as on
 * RabbitMQ (where it is published mandatory); one meant for none of them (OrderConfirmed, for
 * other teams) is dropped.
 *
 * What no consumer takes at once is written to the store before `publish` resolves: parked
 * messages (a DLQ has no consumer in the embedded mode) and delayed ones (a retry queue holds a
 * message for its TTL, then hands it back to its queue; emulated here with a timer, set again
 * from the store at the next start). A consumer acknowledges the original once that publish
 * resolved, so the stored copy is then the only one: a delayed message is deleted only after its
 * handler resolved, and a parked one only after its replay did. A crash in between duplicates,
 * never loses.
 */
export async function createInProcessTransport(options: InProcessOptions): Promise<Transport> {
  const { logger } = options;
  const retryDelayMs = options.retryDelayMs ?? 1_000;
  if (options.store) await migrate(options.store, [brokerMigrations]);
  const hold = options.store ? tableHold(options.store) : memoryHold();
  const queues = new Map<string, Queue>();
  const retryTiers = new Map<string, { target: string; delayMs: number }>();
  const exchangeType = new Map(exchanges.map((e) => [e.exchange, e.type]));
  const add = (spec: QueueSpec) => {
    if (!queues.has(spec.queue))
      queues.set(spec.queue, { spec, handler: undefined, prefetch: 1, inFlight: 0, handling: new Set(), stopped: false, waiting: [] });
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
  const removals = new Set<Promise<void>>();
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
      const handled = new Promise<void>((done) => {
        const attempt = (redelivered: boolean) => {
          handler({ ...item.message, redelivered }).then(
            () => {
              queue.inFlight -= 1;
              item.delivered();
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

  const consumerStopped = (queue: Queue) => new Error(`the consumer of ${queue.spec.queue} has stopped`);

  /** Resolves once the queue's handler has handled the message. */
  const deliver = (queue: Queue, message: IncomingMessage) =>
    new Promise<void>((delivered, refused) => {
      if (queue.stopped) return refused(consumerStopped(queue));
      queue.waiting.push({ message, delivered, refused });
      pump(queue);
    });

  /** Its consumer stopped (the process is stopping): the stored copy is delivered at the next start. */
  const keepStored = (held: Held) => () =>
    logger.info({ queue: held.message.routingKey, messageId: held.message.messageId }, 'delayed message kept for the next start');

  const schedule = (held: Held) => {
    if (closed) return;
    const timer = setTimeout(
      () => {
        timers.delete(timer);
        const queue = queues.get(held.message.routingKey);
        if (!queue) {
          // Kept in the store: a start that declares its queue again delivers it.
          logger.warn({ queue: held.message.routingKey, messageId: held.message.messageId }, 'delayed message for an unknown queue; kept');
          return;
        }
        deliver(queue, held.message).then(() => {
          const removal = hold
            .remove([held.id])
            // It stays stored and is delivered again at the next start: a duplicate consumers absorb.
            .catch((error: unknown) =>
              logger.warn({ err: error, messageId: held.message.messageId }, 'deleting a delivered delayed message failed'),
            )
            .finally(() => removals.delete(removal));
          removals.add(removal);
        }, keepStored(held));
      },
      Math.max(0, (held.dueAt ?? 0) - Date.now()),
    );
    timers.add(timer);
  };

  const transport: Transport = {
    // Not RabbitMQ, though it routes as it does: a name of its own, so that no span claims a broker that was never there.
    peer: { system: IN_PROCESS_MESSAGING_SYSTEM },
    async publish(messages: OutgoingMessage[]) {
      if (closed) throw new Error('in-process transport is closed');
      const deliveries: Promise<void>[] = [];
      const held: Omit<Held, 'id'>[] = [];
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
          held.push({ queue: m.routingKey, dueAt: Date.now() + tier.delayMs, message: copy('', tier.target) });
          continue;
        }
        const targets = routes(m.exchange, m.routingKey);
        // Only where the AMQP transport publishes mandatory: OrderConfirmed, for other teams, may reach no queue.
        if (targets.length === 0 && platformQueueFor(m.exchange, m.routingKey)) unroutable.push(m);
        for (const queue of targets) {
          const message = copy(m.exchange, m.routingKey);
          if (!queue.handler && queue.spec.queue.endsWith('.dlq')) held.push({ queue: queue.spec.queue, dueAt: undefined, message });
          else deliveries.push(deliver(queue, message));
        }
      }
      for (const h of await hold.add(held)) if (h.dueAt !== undefined) schedule(h);
      await Promise.all(deliveries);
      // As RabbitMQ does with a mandatory publish: the others are delivered, these are refused.
      if (unroutable.length > 0) throw new UnroutableError(unroutable, 'no queue bound in process');
    },

    consume(spec: QueueSpec, consumeOptions: ConsumeOptions, handler: DeliveryHandler): Promise<Subscription> {
      declare(spec);
      const queue = queues.get(spec.queue) as Queue;
      queue.handler = handler;
      queue.stopped = false;
      queue.prefetch = consumeOptions.prefetch;
      pump(queue);
      return Promise.resolve({
        async close(giveUp) {
          queue.handler = undefined;
          // A publish waiting for it fails instead of holding its publisher (another service
          // stopping in this process): an outbox keeps the message for the next start.
          queue.stopped = true;
          for (const item of queue.waiting.splice(0)) item.refused(consumerStopped(queue));
          await Promise.race([Promise.allSettled(queue.handling), whenAborted(giveUp)]);
        },
      });
    },

    isConnected: () => !closed,

    deadLetters: {
      list: async (spec, limit) => (await hold.parked(spec.deadLetterQueue, 'all', limit)).map((h) => toDeadLetter(spec, h.message)),
      async replay(spec, ids) {
        const chosen = await hold.parked(spec.deadLetterQueue, ids);
        await transport.publish(chosen.map((h) => replayMessage(spec, h.message)));
        await hold.remove(chosen.map((h) => h.id));
        return chosen.length;
      },
      count: (spec) => hold.count(spec.deadLetterQueue),
    },

    async close() {
      closed = true;
      for (const t of timers) clearTimeout(t);
      await Promise.allSettled(removals);
    },
  };

  const delayed = await hold.delayed();
  for (const h of delayed) schedule(h);
  if (delayed.length > 0) logger.info({ count: delayed.length }, 'delayed messages from before the restart scheduled again');
  return transport;
}
