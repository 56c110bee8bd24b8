import type { IncomingMessage } from '@stockflow/contracts';
import type { Database } from '@stockflow/db';
import { selected } from './dead-letters.ts';

/**
 * A message kept in the store rather than handed to a consumer: waiting in a queue with no
 * consumer (a dead-letter queue's are its parked messages), or delayed in a retry queue.
 */
export interface Held {
  id: number;
  /** The queue holding it. */
  queue: string;
  /** When a delayed message goes back to its queue (ms since the epoch); undefined for one waiting in its queue. */
  dueAt: number | undefined;
  /** As it is delivered: a delayed one through the default exchange, keyed by its queue's name. */
  message: IncomingMessage;
}

/** Where held messages are kept: a table of the store, or memory. */
export interface Hold {
  add(held: Omit<Held, 'id'>[]): Promise<Held[]>;
  remove(ids: number[]): Promise<void>;
  /** Messages waiting in `queue` (a DLQ's are its parked ones), oldest first. */
  waiting(queue: string, ids: readonly string[] | 'all', limit?: number): Promise<Held[]>;
  count(queue: string): Promise<number>;
  /** The queues some message waits in. */
  queuesWaiting(): Promise<string[]>;
  delayed(): Promise<Held[]>;
  /** Moves a delayed message, now due, to the back of its queue's waiting messages. */
  release(id: number): Promise<void>;
}

export function memoryHold(): Hold {
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
    waiting: (queue, ids, limit) =>
      Promise.resolve(held.filter((h) => h.queue === queue && h.dueAt === undefined && selected(ids, h.message.messageId)).slice(0, limit)),
    count: (queue) => Promise.resolve(held.filter((h) => h.queue === queue).length),
    queuesWaiting: () => Promise.resolve([...new Set(held.filter((h) => h.dueAt === undefined).map((h) => h.queue))]),
    delayed: () => Promise.resolve(held.filter((h) => h.dueAt !== undefined)),
    release(id) {
      const due = held.find((h) => h.id === id);
      if (due) {
        held = held.filter((h) => h !== due);
        held.push({ ...due, id: nextId++, queue: due.message.routingKey, dueAt: undefined });
      }
      return Promise.resolve();
    },
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

export function tableHold(db: Database): Hold {
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
    async waiting(queue, ids, limit) {
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
    async queuesWaiting() {
      const { rows } = await db.query<{ queue: string }>('SELECT DISTINCT queue FROM broker_messages WHERE due_at IS NULL');
      return rows.map((r) => r.queue);
    },
    async delayed() {
      const { rows } = await db.query<HeldRow>(`SELECT ${HELD_COLUMNS} FROM broker_messages WHERE due_at IS NOT NULL ORDER BY due_at, id`);
      return rows.map(heldFrom);
    },
    async release(id) {
      // One statement: the message is in its retry queue or in its queue, never in neither. A new
      // identity puts it behind what waits there already, as RabbitMQ appends a dead-lettered message.
      await db.query(
        `WITH due AS (DELETE FROM broker_messages WHERE id = $1 RETURNING exchange, routing_key, message_id, headers, body_type, body)
         INSERT INTO broker_messages (queue, exchange, routing_key, message_id, headers, body_type, body)
         SELECT routing_key, exchange, routing_key, message_id, headers, body_type, body FROM due`,
        [id],
      );
    },
  };
}
