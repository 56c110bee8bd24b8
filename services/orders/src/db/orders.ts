import type { OrderLine, ReservedLine } from '@stockflow/contracts';
import type { Queryable } from '@stockflow/db';
import type { Page } from '@stockflow/graphql';
import type { AnswerChange, Fill, Hold } from '../domain/lifecycle.ts';
import type { Order, OrderStatus } from '../domain/order.ts';
import type { PayableOrder } from '../domain/payment.ts';

/** The rows of the orders table: reads, and writes of what the application decided. No rule lives here. */

const ORDER_COLUMNS = `seq, id, customer_id AS "customerId", status, reason, items, priced_items AS "pricedItems",
  total_cents AS "totalCents", currency, payment_due_at AS "paymentDueAt", paid_at AS "paidAt",
  created_at AS "createdAt", updated_at AS "updatedAt"`.replace(/\s+/g, ' ');
/** The same, of the table aliased `o` (an UPDATE ... FROM, where a bare column name would be ambiguous). */
const ORDER_COLUMNS_OF_O = ORDER_COLUMNS.split(', ')
  .map((c) => `o.${c}`)
  .join(', ');

/** A hold's end as the database renders it to the millisecond, so the expiry reason names it exactly. */
const PAYMENT_DUE_ISO = `to_char(payment_due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "paymentDueIso"`;

const bySeq = (rows: Order[]) => rows.sort((a, b) => a.seq - b.seq);

export interface OrderFilter {
  ids?: string[] | undefined;
  status?: OrderStatus | undefined;
  customerId?: string | undefined;
}

/** The reads the API and the metrics make, outside any command. */
export function orderReads(db: Queryable) {
  return {
    byId: async (id: string): Promise<Order | undefined> =>
      (await db.query<Order>(`SELECT ${ORDER_COLUMNS} FROM orders WHERE id = $1`, [id])).rows[0],

    /** The newest orders first (of one customer, when given). */
    async recent(customerId: string | undefined, limit: number): Promise<Order[]> {
      const { rows } = await db.query<Order>(
        `SELECT ${ORDER_COLUMNS} FROM orders WHERE ($1::text IS NULL OR customer_id = $1) ORDER BY seq DESC LIMIT $2`,
        [customerId ?? null, limit],
      );
      return rows;
    },

    /** How many orders are in each status (of one customer, when given). */
    async countsByStatus(customerId: string | undefined): Promise<{ status: OrderStatus; count: number }[]> {
      const { rows } = await db.query<{ status: OrderStatus; count: number }>(
        `SELECT status, count(*)::int AS count FROM orders WHERE ($1::text IS NULL OR customer_id = $1) GROUP BY status`,
        [customerId ?? null],
      );
      return rows;
    },

    /**
     * How many orders the expiry cancelled (of one customer, when given): marked by expired_at,
     * so a reason typed into cancelOrder that merely reads alike is not counted.
     */
    async expiredCount(customerId: string | undefined): Promise<number> {
      const { rows } = await db.query<{ count: number }>(
        `SELECT count(*)::int AS count FROM orders WHERE expired_at IS NOT NULL AND ($1::text IS NULL OR customer_id = $1)`,
        [customerId ?? null],
      );
      return rows[0]?.count ?? 0;
    },

    async list(filter: OrderFilter, page: { after: number | undefined; limit: number }): Promise<Page<Order>> {
      const params: unknown[] = [];
      const conditions: string[] = [];
      if (filter.ids) conditions.push(`id = ANY($${params.push(filter.ids)}::text[])`);
      if (filter.status) conditions.push(`status = $${params.push(filter.status)}`);
      if (filter.customerId) conditions.push(`customer_id = $${params.push(filter.customerId)}`);
      const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
      const countParams = [...params];
      const pageWhere = page.after === undefined ? where : `${where ? `${where} AND` : 'WHERE'} seq > $${params.push(page.after)}`;
      params.push(page.limit + 1);
      const [{ rows }, count] = await Promise.all([
        db.query<Order>(`SELECT ${ORDER_COLUMNS} FROM orders ${pageWhere} ORDER BY seq LIMIT $${params.length}`, params),
        db.query<{ total: number }>(`SELECT count(*)::int AS total FROM orders ${where}`, countParams),
      ]);
      return { rows: rows.slice(0, page.limit), hasNextPage: rows.length > page.limit, totalCount: count.rows[0]?.total ?? 0 };
    },

    /** Seconds since the oldest PENDING order was accepted (0 when there is none). */
    async oldestPendingAgeSeconds(): Promise<number> {
      // The first by seq (insertion order) through the (status, seq) index: one row read per
      // scrape, however many orders are PENDING during a peak.
      const { rows } = await db.query<{ age: number }>(
        `SELECT extract(epoch FROM now() - created_at)::float8 AS age FROM orders WHERE status = 'PENDING' ORDER BY seq LIMIT 1`,
      );
      return rows[0]?.age ?? 0;
    },

    /** Seconds since the oldest unpaid hold should have been released (0 when none is overdue). */
    async overdueHoldSeconds(): Promise<number> {
      const { rows } = await db.query<{ overdue: number }>(
        `SELECT greatest(extract(epoch FROM now() - payment_due_at), 0)::float8 AS overdue FROM orders
         WHERE status = 'CONFIRMED' AND payment_due_at IS NOT NULL ORDER BY payment_due_at LIMIT 1`,
      );
      return rows[0]?.overdue ?? 0;
    },
  };
}

export type OrderReads = ReturnType<typeof orderReads>;

/** A new order's row. */
export interface NewOrderRow {
  id: string;
  customer_id: string;
  items: OrderLine[];
  idempotency_key: string | null;
}

/** Inserts PENDING orders, in seq order; a row whose (customer, idempotency key) exists is left out. */
export async function insertOrders(tx: Queryable, rows: readonly NewOrderRow[]): Promise<Order[]> {
  const { rows: created } = await tx.query<Order>(
    `INSERT INTO orders (id, customer_id, status, items, idempotency_key)
     SELECT id, customer_id, 'PENDING', items, idempotency_key
     FROM json_to_recordset($1::json) AS x(id text, customer_id text, items json, idempotency_key text)
     ON CONFLICT (customer_id, idempotency_key) DO NOTHING RETURNING ${ORDER_COLUMNS}`,
    [JSON.stringify(rows)],
  );
  return bySeq(created);
}

/** The orders these (customer, idempotency key) pairs created. */
export async function ordersByIdempotencyKey(
  tx: Queryable,
  keys: readonly { customerId: string; key: string }[],
): Promise<(Order & { idempotencyKey: string })[]> {
  if (keys.length === 0) return [];
  const { rows } = await tx.query<Order & { idempotencyKey: string }>(
    `SELECT ${ORDER_COLUMNS}, idempotency_key AS "idempotencyKey" FROM orders o
     WHERE (customer_id, idempotency_key) IN (SELECT c, k FROM json_to_recordset($1::json) AS x(c text, k text))`,
    [JSON.stringify(keys.map(({ customerId, key }) => ({ c: customerId, k: key })))],
  );
  return rows;
}

/** One order, locked for the rest of the transaction. */
export async function lockOrder(tx: Queryable, id: string): Promise<Order | undefined> {
  return (await tx.query<Order>(`SELECT ${ORDER_COLUMNS} FROM orders WHERE id = $1 FOR UPDATE`, [id])).rows[0];
}

/** Writes a transition decided on a locked order; null `reason` keeps the one it has. */
export async function writeStatus(tx: Queryable, id: string, status: OrderStatus, reason: string | null): Promise<Order> {
  const { rows } = await tx.query<Order>(
    `UPDATE orders SET status = $2, reason = COALESCE($3, reason), updated_at = now() WHERE id = $1 RETURNING ${ORDER_COLUMNS}`,
    [id, status, reason],
  );
  return rows[0] as Order;
}

/**
 * The orders among `ids` that are PENDING, or in `filled` (backorders filled, whatever their
 * status), locked in id order (as every writer of orders locks them), so two instances with
 * overlapping batches never deadlock.
 */
export async function lockAnswered(
  tx: Queryable,
  ids: readonly string[],
  filled: readonly string[],
): Promise<Pick<Order, 'id' | 'customerId' | 'status' | 'pricedItems'>[]> {
  const { rows } = await tx.query<Pick<Order, 'id' | 'customerId' | 'status' | 'pricedItems'>>(
    `SELECT id, customer_id AS "customerId", status, priced_items AS "pricedItems" FROM orders
     WHERE id = ANY($1::text[]) AND (status = 'PENDING' OR id = ANY($2::text[])) ORDER BY id FOR UPDATE`,
    [ids, filled],
  );
  return rows;
}

/** Records BackorderFilled events as applied; returns the event ids not recorded before. */
export async function recordFills(tx: Queryable, fills: readonly { event_id: string; order_id: string }[]): Promise<Set<string>> {
  const { rows } = await tx.query<{ event_id: string }>(
    `INSERT INTO backorder_fills (event_id, order_id)
     SELECT event_id, order_id FROM json_to_recordset($1::json) AS x(event_id text, order_id text)
     ON CONFLICT (event_id) DO NOTHING RETURNING event_id`,
    [JSON.stringify(fills.map(({ event_id, order_id }) => ({ event_id, order_id })))],
  );
  return new Set(rows.map((r) => r.event_id));
}

/** The fills kept for these orders until their reservation (in the order they were received). */
export async function waitingFills(tx: Queryable, orderIds: readonly string[]): Promise<Fill[]> {
  const { rows } = await tx.query<Fill>(
    `SELECT event_id, order_id, waiting_items AS items FROM backorder_fills
     WHERE order_id = ANY($1::text[]) AND waiting_items IS NOT NULL ORDER BY applied_at, event_id`,
    [orderIds],
  );
  return rows;
}

/** Keeps recorded fills (with their items) until their order's reservation. */
export async function keepWaiting(tx: Queryable, fills: readonly Fill[]): Promise<void> {
  await tx.query(
    `UPDATE backorder_fills f SET waiting_items = x.items
     FROM json_to_recordset($1::json) AS x(event_id text, items jsonb) WHERE f.event_id = x.event_id`,
    [JSON.stringify(fills.map(({ event_id, items }) => ({ event_id, items })))],
  );
}

/** Fills that waited and are now applied (or dropped): no longer waiting. */
export async function settleWaiting(tx: Queryable, eventIds: readonly string[]): Promise<void> {
  await tx.query(`UPDATE backorder_fills SET waiting_items = NULL WHERE event_id = ANY($1::text[])`, [eventIds]);
}

/** Writes reserved lines whose backorders were filled (the order's status does not change). */
export async function writeFilledLines(tx: Queryable, filled: ReadonlyMap<string, ReservedLine[]>): Promise<void> {
  await tx.query(
    `UPDATE orders o SET priced_items = x.priced_items
     FROM json_to_recordset($1::json) AS x(id text, priced_items json) WHERE o.id = x.id`,
    [JSON.stringify([...filled].map(([id, lines]) => ({ id, priced_items: lines })))],
  );
}

/** Writes Inventory's answers as decided, to orders still PENDING; returns the orders moved. */
export async function writeAnswers(tx: Queryable, decided: ReadonlyMap<string, { status: OrderStatus } & AnswerChange>): Promise<Order[]> {
  const rows = [...decided].map(([id, d]) => ({
    order_id: id,
    status: d.status,
    reason: d.reason,
    priced_items: d.pricedItems,
    total_cents: d.totalCents,
    currency: d.currency,
    hold_seconds: d.holdSeconds,
  }));
  const { rows: moved } = await tx.query<Order>(
    `UPDATE orders o SET status = a.status, reason = COALESCE(a.reason, o.reason), updated_at = now(),
       priced_items = a.priced_items, total_cents = a.total_cents, currency = a.currency,
       payment_due_at = CASE WHEN a.hold_seconds IS NOT NULL THEN now() + make_interval(secs => a.hold_seconds) END,
       decided_at = now()
     FROM json_to_recordset($1::json)
       AS a(order_id text, status text, reason text, priced_items json, total_cents int, currency text, hold_seconds int)
     WHERE o.id = a.order_id AND o.status = 'PENDING'
     RETURNING ${ORDER_COLUMNS_OF_O}`,
    [JSON.stringify(rows)],
  );
  return moved;
}

/**
 * The orders payments name, locked in id order, with their holds: `paymentsOn` false, no hold is
 * ever over.
 */
export async function lockPayable(
  tx: Queryable,
  ids: readonly string[],
  paymentsOn: boolean,
): Promise<(PayableOrder & Hold & { id: string })[]> {
  const { rows } = await tx.query<PayableOrder & Hold & { id: string }>(
    `SELECT id, status, total_cents AS "totalCents", currency, ${PAYMENT_DUE_ISO},
            $2::boolean AND payment_due_at IS NOT NULL AND payment_due_at <= now() AS "holdExpired"
     FROM orders WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`,
    [ids, paymentsOn],
  );
  return rows;
}

/**
 * Up to `limit` CONFIRMED orders whose hold is over, soonest due first, locked; rows another
 * instance (or a payment) holds are skipped.
 */
export async function lockDueHolds(tx: Queryable, limit: number): Promise<(Hold & { id: string })[]> {
  const { rows } = await tx.query<Hold & { id: string }>(
    `SELECT id, status, true AS "holdExpired", ${PAYMENT_DUE_ISO} FROM orders
     WHERE status = 'CONFIRMED' AND payment_due_at IS NOT NULL AND payment_due_at <= now()
     ORDER BY payment_due_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
    [limit],
  );
  return rows;
}

/**
 * Writes how holds ended, to orders still CONFIRMED: PAID (paid now), or CANCELLED because the
 * hold ran out (expired now, with its reason). Returns the orders moved, in seq order.
 */
export async function writeHoldOutcomes(
  tx: Queryable,
  outcomes: readonly { id: string; status: 'PAID' | 'CANCELLED'; reason: string | null }[],
): Promise<Order[]> {
  const { rows } = await tx.query<Order>(
    `UPDATE orders o SET status = x.status, updated_at = now(),
       paid_at = CASE WHEN x.status = 'PAID' THEN now() ELSE o.paid_at END,
       reason = CASE WHEN x.status = 'CANCELLED' THEN x.reason ELSE o.reason END,
       expired_at = CASE WHEN x.status = 'CANCELLED' THEN now() END
     FROM json_to_recordset($1::json) AS x(id text, status text, reason text)
     WHERE o.id = x.id AND o.status = 'CONFIRMED'
     RETURNING ${ORDER_COLUMNS_OF_O}`,
    [JSON.stringify(outcomes)],
  );
  return bySeq(rows);
}

/** PENDING orders due to be sent again: older than the threshold (`$1`), and not sent again within it. */
const DUE_AGAIN = `status = 'PENDING' AND created_at < now() - make_interval(secs => $1)
  AND (republished_at IS NULL OR republished_at < now() - make_interval(secs => $1))`;

/**
 * Marks up to `limit` orders due to be sent again as sent now, oldest first; rows a concurrent
 * run holds are skipped. Returns them in seq order.
 */
export async function markRepublished(tx: Queryable, olderThanSeconds: number, limit: number): Promise<Order[]> {
  const { rows } = await tx.query<Order>(
    `WITH due AS (SELECT id FROM orders WHERE ${DUE_AGAIN} ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED)
     UPDATE orders o SET republished_at = now() FROM due WHERE o.id = due.id
     RETURNING ${ORDER_COLUMNS_OF_O}`,
    [olderThanSeconds, limit],
  );
  return bySeq(rows);
}

/** How many orders are due to be sent again (those marked by this transaction count no more). */
export async function countDueAgain(tx: Queryable, olderThanSeconds: number): Promise<number> {
  const { rows } = await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM orders WHERE ${DUE_AGAIN}`, [olderThanSeconds]);
  return rows[0]?.n ?? 0;
}

/** The answers the lag is measured on: the latest this many, of the last minute. */
const LAG_SAMPLE = { answers: 1_000, seconds: 60 } as const;

/**
 * How long Inventory's latest answers took, from the order's creation to its answer: the longest
 * of the latest LAG_SAMPLE.answers answers of the last LAG_SAMPLE.seconds (0 when there were
 * none). Orders sent again by the repair are left out: their wait counts the loss, not the queue.
 */
export async function answerLagSeconds(q: Queryable): Promise<number> {
  const { rows } = await q.query<{ lag: number }>(
    `SELECT coalesce(max(extract(epoch FROM decided_at - created_at)), 0)::float8 AS lag FROM (
       SELECT decided_at, created_at FROM orders
       WHERE decided_at > now() - make_interval(secs => $1) AND republished_at IS NULL
       ORDER BY decided_at DESC LIMIT $2
     ) AS latest`,
    [LAG_SAMPLE.seconds, LAG_SAMPLE.answers],
  );
  return rows[0]?.lag ?? 0;
}
