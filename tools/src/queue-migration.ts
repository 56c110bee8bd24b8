/**
 * Moves a deployment's queues from classic to quorum queues while the services run, losing
 * nothing. RabbitMQ cannot change a queue's type in place: each queue is
 * emptied into a holding queue, deleted, declared again with its new type and arguments, and
 * refilled. What arrives meanwhile goes to the holding queue (it takes the queue's bindings
 * first); what is sent to the queue by name during the few milliseconds it does not exist is
 * returned to a publisher that asked for `mandatory` (the services' outbox and consumers do, and
 * try again). A message may be delivered twice (one copy taken by a consumer while another was
 * being moved), never lost: consumers are idempotent.
 */
import { Connection, type Channel, type SyncMessage } from 'rabbitmq-client';
import {
  deadLetterRoute,
  exchanges,
  QUEUE_TYPES,
  queueDeclarations,
  queues as topologyQueues,
  type QueueDeclaration,
  type QueueType,
} from '@stockflow/contracts';
import { amqpErrorCode, connectionTarget, encodeBody } from '@stockflow/messaging';

interface Binding {
  exchange: string;
  routingKey: string;
}

export interface QueueState {
  queue: string;
  /** `holding`: left by an interrupted migration (run it again). */
  type: QueueType | 'missing' | 'holding';
  messages: number;
  consumers: number;
}

const HOLDING_SUFFIX = '.migrating';
/** Messages moved per confirm round trip. */
const MOVE_BATCH = 200;

interface PlatformQueue {
  name: string;
  declared: Record<QueueType, QueueDeclaration>;
  bindings: Binding[];
}

/** Every queue the platform declares, as each type declares it, with its bindings, in the order they are migrated. */
function platformQueues(): PlatformQueue[] {
  // Retry queues first: once they are quorum queues they dead-letter at least once, so a retry
  // expiring while its consumer queue is being swapped waits instead of being dropped.
  return Object.values(topologyQueues).flatMap((spec) => {
    const quorum = queueDeclarations(spec, 'quorum');
    const classic = queueDeclarations(spec, 'classic');
    return [
      ...quorum.retries.map((q, i) => ({
        name: q.queue,
        declared: { quorum: q, classic: classic.retries[i] as QueueDeclaration },
        bindings: [],
      })),
      { name: spec.queue, declared: { quorum: quorum.main, classic: classic.main }, bindings: spec.bindings },
      {
        name: spec.deadLetterQueue,
        declared: { quorum: quorum.deadLetter, classic: classic.deadLetter },
        bindings: [deadLetterRoute(spec)],
      },
    ];
  });
}

export async function openBroker(url: string) {
  // noDelay: a move is a round trip per message, which Nagle's algorithm slowed to tens a second.
  const connection = new Connection({
    ...connectionTarget(url),
    connectionName: 'stockflow-queues',
    retryLow: 200,
    retryHigh: 2_000,
    noDelay: true,
  });
  await connection.onConnect(10_000);
  return connection;
}

/**
 * The type of a queue, found by declaring it passively (does it exist?), then as each type
 * declares it: the broker accepts only the declaration with its own type and arguments, and a
 * declaration it accepts changes nothing.
 */
async function stateOf(connection: Connection, queue: PlatformQueue): Promise<QueueState> {
  let depth: { messageCount: number; consumerCount: number };
  try {
    depth = await connection.queueDeclare({ queue: queue.name, passive: true });
  } catch (error) {
    if (amqpErrorCode(error) === 'NOT_FOUND') return { queue: queue.name, type: 'missing', messages: 0, consumers: 0 };
    throw error;
  }
  for (const type of QUEUE_TYPES) {
    try {
      await connection.queueDeclare(queue.declared[type]);
      return { queue: queue.name, type, messages: depth.messageCount, consumers: depth.consumerCount };
    } catch (error) {
      if (amqpErrorCode(error) !== 'PRECONDITION_FAILED') throw error;
    }
  }
  throw new Error(
    `${queue.name} exists with arguments of its own (neither the quorum nor the classic declaration of docs/events.md); move it by hand`,
  );
}

export async function queueStates(connection: Connection): Promise<QueueState[]> {
  const out: QueueState[] = [];
  for (const queue of platformQueues()) {
    out.push(await stateOf(connection, queue));
    // A holding queue left by an interrupted migration: it takes the queue's new messages and no
    // consumer reads it until the migration is run again.
    const holding = `${queue.name}${HOLDING_SUFFIX}`;
    const left = await connection.queueDeclare({ queue: holding, passive: true }).catch(() => undefined);
    if (left) out.push({ queue: holding, type: 'holding', messages: left.messageCount, consumers: left.consumerCount });
  }
  return out;
}

/**
 * Moves every message of `from` to `to` (by the default exchange), confirmed before it is taken
 * from `from`. On a channel of its own: RabbitMQ 3.10's channel remembers the type of a queue it
 * used, and crashes publishing to a new queue of another type under the same name.
 */
async function move(connection: Connection, from: string, to: string): Promise<number> {
  // What is there now, and what arrives meanwhile up to a batch more: a queue that something
  // keeps sending to by name is not chased for ever (the caller's "delete if empty" says so).
  const { messageCount } = await connection.queueDeclare({ queue: from, passive: true });
  const channel = await connection.acquire();
  try {
    await channel.confirmSelect();
    return await moveOn(channel, from, to, messageCount + MOVE_BATCH);
  } finally {
    await channel.close().catch(() => undefined);
  }
}

async function moveOn(channel: Channel, from: string, to: string, limit: number): Promise<number> {
  // A message returned (its target missing: deleted by someone else meanwhile) is confirmed all
  // the same: nothing is acknowledged from `from` then, and closing the channel puts it back.
  let returned = 0;
  channel.on('basic.return', () => (returned += 1));
  let moved = 0;
  for (;;) {
    const batch: SyncMessage[] = [];
    while (batch.length < Math.min(MOVE_BATCH, limit - moved)) {
      const message = await channel.basicGet({ queue: from });
      if (!message) break;
      batch.push(message);
    }
    if (batch.length === 0) return moved;
    await Promise.all(
      batch.map((m) =>
        channel.basicPublish(
          {
            exchange: '',
            routingKey: to,
            mandatory: true,
            durable: true,
            contentType: m.contentType,
            contentEncoding: m.contentEncoding,
            headers: m.headers,
            messageId: m.messageId,
            correlationId: m.correlationId,
            timestamp: m.timestamp,
            type: m.type,
            appId: m.appId,
          },
          encodeBody(m.body),
        ),
      ),
    );
    // rabbitmq-client emits a return a turn of the event loop after it settles the confirm.
    await new Promise((resolve) => setImmediate(resolve));
    if (returned > 0) throw new Error(`${to} does not exist (any more): nothing was taken from ${from}; run the migration again`);
    channel.basicAck({ deliveryTag: (batch.at(-1) as SyncMessage).deliveryTag, multiple: true });
    moved += batch.length;
  }
}

/**
 * Moves everything from the classic queue `from` to `to`, then deletes `from` only if it is
 * empty, moving again what arrived in between.
 */
async function emptyAndDelete(connection: Connection, from: string, to: string, beforeDelete?: Hook): Promise<number> {
  let moved = 0;
  for (let attempt = 1; ; attempt += 1) {
    moved += await move(connection, from, to);
    await beforeDelete?.(from);
    try {
      await connection.queueDelete({ queue: from, ifEmpty: true });
      return moved;
    } catch (error) {
      // PRECONDITION_FAILED: not empty (a message arrived after the move); move that one too.
      if (amqpErrorCode(error) !== 'PRECONDITION_FAILED') throw error;
      if (attempt >= 50) {
        throw new Error(
          `${from} kept receiving messages by name (replays, retries) while it was being emptied; it is unbound and its messages are in the holding queue: stop what sends to it and run the migration again`,
        );
      }
    }
  }
}

/** How long a message routed just before an unbind may take to be stored in its queue. */
const SETTLE_MS = 1_000;

/**
 * Empties a holding queue back into `to` and deletes it. Quorum queues refuse a delete "if empty"
 * (and the refusal closes the connection). The holding queue has no binding left and nothing but
 * this tool sends to it by name: once a message routed before its unbind has been stored (a
 * pause, when it had bindings), and it is empty, it stays empty.
 */
async function emptyHolding(connection: Connection, holding: string, to: string, wasBound: boolean): Promise<number> {
  if (wasBound) await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const moved = await move(connection, holding, to);
  const { messageCount } = await connection.queueDelete({ queue: holding });
  if (messageCount > 0) throw new Error(`${holding} received ${messageCount} messages after it was emptied; it should receive none`);
  return moved;
}

/** Called with a queue's name between its last move and its delete (tests send a message there). */
type Hook = (queue: string) => Promise<void>;

export interface MigrationStep {
  queue: string;
  moved: number;
}

/**
 * Makes every classic platform queue a quorum queue (missing ones are left for the services to
 * declare). Only this way: a quorum queue cannot be deleted "only if empty", which is what keeps a
 * message sent to it by name in the last moment from being lost. Resumable: a holding queue left
 * by an interrupted run is emptied into its queue.
 */
export async function migrateToQuorum(
  connection: Connection,
  log: (line: string) => void = () => undefined,
  hooks: { beforeDelete?: Hook } = {},
) {
  const to = 'quorum';
  const steps: MigrationStep[] = [];
  for (const e of exchanges) await connection.exchangeDeclare({ exchange: e.exchange, type: e.type, durable: e.durable });
  for (const queue of platformQueues()) {
    const { bindings } = queue;
    const declaration = queue.declared[to];
    const state = await stateOf(connection, queue);
    const holding = `${declaration.queue}${HOLDING_SUFFIX}`;
    if (state.type === to || state.type === 'missing') {
      // A holding queue left by an interrupted run still holds messages of this queue.
      const leftover = await connection.queueDeclare({ queue: holding, passive: true }).catch(() => undefined);
      if (leftover) {
        if (state.type === 'missing') {
          await connection.queueDeclare(declaration);
          for (const b of bindings) await connection.queueBind({ queue: declaration.queue, ...b });
        }
        for (const b of bindings) await connection.queueUnbind({ queue: holding, ...b });
        const moved = await emptyHolding(connection, holding, declaration.queue, bindings.length > 0);
        log(`${declaration.queue}: ${moved} messages back from an interrupted run's ${holding}`);
      }
      continue;
    }
    // A plain quorum queue: replicated while it holds the only copy of the messages.
    await connection.queueDeclare({ queue: holding, durable: true, arguments: { 'x-queue-type': 'quorum' } });
    for (const b of bindings) await connection.queueBind({ queue: holding, ...b });
    for (const b of bindings) await connection.queueUnbind({ queue: declaration.queue, ...b });
    let moved = await emptyAndDelete(connection, declaration.queue, holding, hooks.beforeDelete);
    try {
      await connection.queueDeclare(declaration);
    } catch (error) {
      if (amqpErrorCode(error) !== 'PRECONDITION_FAILED') throw error;
      // A running service declared it again first, with the old type: put the messages back
      // and say what to do.
      for (const b of bindings) await connection.queueBind({ queue: declaration.queue, ...b });
      await emptyHolding(connection, holding, declaration.queue, bindings.length > 0);
      throw new Error(
        `${declaration.queue} was declared again as ${state.type} by a running service: set AMQP_QUEUE_TYPE=${to} on every service first (they keep using the ${state.type} queues until migrated), then run this again`,
      );
    }
    for (const b of bindings) await connection.queueBind({ queue: declaration.queue, ...b });
    for (const b of bindings) await connection.queueUnbind({ queue: holding, ...b });
    moved = Math.max(moved, await emptyHolding(connection, holding, declaration.queue, bindings.length > 0));
    steps.push({ queue: declaration.queue, moved });
    log(`${declaration.queue}: classic -> quorum, ${moved} messages moved`);
  }
  return steps;
}
