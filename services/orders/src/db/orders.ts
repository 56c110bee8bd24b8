import type { InventoryAnswer, PaymentEvent } from '@stockflow/contracts';
import { ConflictError, createBatcher, NotFoundError } from '@stockflow/platform';
import type { Database, Queryable, Transaction } from '@stockflow/db';
import { traceHeaders, tracesByOrder, type Logger, type TraceContext } from '@stockflow/observability';
import type { OutboxWriter } from '@stockflow/messaging';
import type { Page } from '@stockflow/graphql';
import { allowedFrom, sameLines, transitionError, type NewOrder, type Order, type OrderStatus } from '../domain/order.ts';
import { judgePayment, MAX_PAYMENTS_LISTED, orderTotal, type Payment, type PayableOrder } from '../domain/payment.ts';
import { eventFor, refundFor, type Clock } from '../messaging/events.ts';
import type { OrdersMetrics } from '../metrics.ts';

/** Channel of the NOTIFY sent on every status change; every instance LISTENs to it. */
export const ORDER_STATUS_CHANNEL = 'order_status';

export interface StatusChange {
  id: string;
  customerId: string;
  status: OrderStatus;
}

const ORDER_COLUMNS = `seq, id, customer_id AS "customerId", status, reason, items, priced_items AS "pricedItems",
  total_cents AS "totalCents", currency, payment_due_at AS "paymentDueAt", paid_at AS "paidAt",
  created_at AS "createdAt", updated_at AS "updatedAt"`.replace(/\s+/g, ' ');
/** The same, of the table aliased `o` (an UPDATE ... FROM, where a bare column name would be ambiguous). */
const ORDER_COLUMNS_OF_O = ORDER_COLUMNS.split(', ')
  .map((c) => `o.${c}`)
  .join(', ');

export interface OrderFilter {
  ids?: string[] | undefined;
  status?: OrderStatus | undefined;
  customerId?: string | undefined;
}

/** How the shop takes payment. */
export interface PaymentSettings {
  /** How long a CONFIRMED order holds its units for payment; 0: payments are off (taken elsewhere). */
  holdSeconds: number;
  /** ISO 4217 code of the shop's prices. */
  currency: string;
}

/** What order writes need besides the transaction: time and ids, payment settings, and the outbox for their events. */
export interface Effects {
  clock: Clock;
  outbox: OutboxWriter;
  payments: PaymentSettings;
  /** For the per-order lines of a flow (debug level). */
  logger?: Logger;
  metrics?: OrdersMetrics;
}

/** The first key of the advisory locks on payment ids (the second is the id's hash): a space of their own. */
const PAYMENT_ID_LOCKS = 7_001;

/** Why an order whose hold ran out was cancelled, from its row (`o`). */
const EXPIRY_REASON = `'Payment not received by ' || to_char(o.payment_due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

const PAYMENT_COLUMNS = `payment_id AS "paymentId", order_id AS "orderId", amount_cents AS "amountCents", currency, outcome, reason,
  created_at AS "createdAt", updated_at AS "updatedAt"`.replace(/\s+/g, ' ');

/** A new order, with the trace of the request that created it. */
type Intake = NewOrder & { trace: TraceContext | undefined };

/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more. */
const NOTIFY_PAYLOAD_BYTES = 7_000;

/** Status changes grouped into as few NOTIFY payloads (JSON arrays) as the size limit allows. */
export function notifyPayloads(changes: StatusChange[]): string[] {
  const payloads: string[] = [];
  let group: string[] = [];
  let size = 2;
  for (const change of changes) {
    const json = JSON.stringify(change);
    const bytes = Buffer.byteLength(json) + 1;
    if (group.length > 0 && size + bytes > NOTIFY_PAYLOAD_BYTES) {
      payloads.push(`[${group.join(',')}]`);
      group = [];
      size = 2;
    }
    group.push(json);
    size += bytes;
  }
  if (group.length > 0) payloads.push(`[${group.join(',')}]`);
  return payloads;
}

/** Writes the event and the notification an order owes on entering its current status. */
async function announce(
  tx: Transaction,
  orders: Order[],
  { clock, outbox, logger }: Effects,
  traceOf: (orderId: string) => TraceContext | undefined,
  paymentOf: (orderId: string) => Payment | undefined = () => undefined,
): Promise<void> {
  if (orders.length === 0) return;
  const events = orders.map((o) => ({ ...eventFor(o, clock, paymentOf(o.id)), headers: traceHeaders(traceOf(o.id)) }));
  await outbox.enqueue(tx, events);
  if (logger?.isLevelEnabled('debug')) {
    tx.afterCommit(() =>
      orders.forEach((o, i) =>
        logger.debug(
          { order_id: o.id, event_id: events[i]?.messageId, correlation_id: traceOf(o.id)?.traceId, status: o.status },
          'order status changed',
        ),
      ),
    );
  }
  const payloads = notifyPayloads(orders.map((o) => ({ id: o.id, customerId: o.customerId, status: o.status })));
  await tx.query(`SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, [ORDER_STATUS_CHANNEL, payloads]);
}

const paymentsOn = (effects: Effects) => effects.payments.holdSeconds > 0;

/**
 * Moves one order to `to` if the lifecycle allows it from where it is, and it belongs to
 * `customerId` when one is given; undefined if not.
 */
async function transition(
  tx: Queryable,
  id: string,
  to: OrderStatus,
  reason: string | null,
  customerId: string | undefined,
  effects: Effects,
): Promise<Order | undefined> {
  // A CONFIRMED order with a payment hold is fulfilled only once paid (awaitsPayment).
  const { rows } = await tx.query<Order>(
    `UPDATE orders SET status = $2, reason = COALESCE($3, reason), updated_at = now()
     WHERE id = $1 AND status = ANY($4::text[]) AND ($5::text IS NULL OR customer_id = $5)
       AND NOT ($2 = 'FULFILLED' AND $6::boolean AND status = 'CONFIRMED' AND payment_due_at IS NOT NULL)
     RETURNING ${ORDER_COLUMNS}`,
    [id, to, reason, allowedFrom(to), customerId ?? null, paymentsOn(effects)],
  );
  return rows[0];
}

/**
 * Money kept for orders that were just cancelled after being paid goes back: their payment is
 * marked for refund and a RefundRequested is written, in the cancellation's transaction.
 */
async function refundCancelled(tx: Transaction, cancelled: readonly Order[], effects: Effects): Promise<void> {
  const paid = cancelled.filter((o) => o.paidAt !== null).map((o) => o.id);
  if (paid.length === 0) return;
  const { rows } = await tx.query<Payment>(
    `UPDATE payments SET outcome = 'REFUND_REQUESTED', reason = 'the order was cancelled after it was paid', updated_at = now()
     WHERE order_id = ANY($1::text[]) AND outcome = 'PAID' RETURNING ${PAYMENT_COLUMNS}`,
    [paid],
  );
  await effects.outbox.enqueue(
    tx,
    rows.map((p) => refundFor(p, effects.clock)),
  );
}

const keyOf = (customerId: string, key: string) => `${customerId}\u0000${key}`;

async function insertOrders(tx: Transaction, orders: Intake[], effects: Effects): Promise<(Order | Error)[]> {
  const rows = orders.map((o) => ({
    id: `ORD-${effects.clock.newId()}`,
    customer_id: o.customerId,
    items: o.items,
    idempotency_key: o.idempotencyKey,
  }));
  const { rows: created } = await tx.query<Order>(
    `INSERT INTO orders (id, customer_id, status, items, idempotency_key)
     SELECT id, customer_id, 'PENDING', items, idempotency_key
     FROM json_to_recordset($1::json) AS x(id text, customer_id text, items json, idempotency_key text)
     ON CONFLICT (customer_id, idempotency_key) DO NOTHING RETURNING ${ORDER_COLUMNS}`,
    [JSON.stringify(rows)],
  );
  created.sort((a, b) => a.seq - b.seq);
  const traceById = new Map(rows.map((r, i) => [r.id, orders[i]?.trace]));
  await announce(tx, created, effects, (id) => traceById.get(id));
  const byNewId = new Map(created.map((o) => [o.id, o]));
  // The rest repeat an idempotency key: answer with the order that key created before.
  const repeated = orders.filter((_, i) => !byNewId.has(rows[i]?.id as string));
  const previous = new Map<string, Order>();
  if (repeated.length > 0) {
    const { rows: found } = await tx.query<Order & { idempotencyKey: string }>(
      `SELECT ${ORDER_COLUMNS}, idempotency_key AS "idempotencyKey" FROM orders o
       WHERE (customer_id, idempotency_key) IN (SELECT c, k FROM json_to_recordset($1::json) AS x(c text, k text))`,
      [JSON.stringify(repeated.map((o) => ({ c: o.customerId, k: o.idempotencyKey })))],
    );
    for (const o of found) previous.set(keyOf(o.customerId, o.idempotencyKey), o);
  }
  return orders.map((order, i) => {
    const fresh = byNewId.get(rows[i]?.id as string);
    if (fresh) return fresh;
    const earlier = previous.get(keyOf(order.customerId, order.idempotencyKey as string));
    if (!earlier) return new Error('order neither created nor found by its idempotency key');
    if (!sameLines(earlier.items, order.items)) {
      return new ConflictError('this idempotencyKey was already used for an order with other items', { orderId: earlier.id });
    }
    return earlier;
  });
}

export function ordersRepository(db: Database, effects: Effects) {
  const byId = async (q: Queryable, id: string) =>
    (await q.query<Order>(`SELECT ${ORDER_COLUMNS} FROM orders WHERE id = $1`, [id])).rows[0];

  /**
   * For operator and customer actions: a refused transition is an error the caller sees. Acting
   * for a customer, another customer's order is answered as one that does not exist, so that
   * neither the error nor the status tells that it does.
   */
  const act = (id: string, to: OrderStatus, reason: string | null, trace: TraceContext | undefined, customerId?: string) =>
    db.transaction(async (tx) => {
      const moved = await transition(tx, id, to, reason, customerId, effects);
      if (!moved) {
        const current = await byId(tx, id);
        if (!current || (customerId !== undefined && current.customerId !== customerId)) {
          throw new NotFoundError(`order ${id} does not exist`, { orderId: id });
        }
        throw transitionError(current, to, paymentsOn(effects));
      }
      await announce(tx, [moved], effects, () => trace);
      if (to === 'CANCELLED') await refundCancelled(tx, [moved], effects);
      return moved;
    });

  // Concurrent createOrder calls share one transaction (one commit) and one statement per table:
  // while a batch commits, the calls arriving meanwhile gather into the next.
  const intake = createBatcher<Intake, Order>({
    maxBatch: 200,
    maxInFlight: 2,
    run: (orders) => db.transaction((tx) => insertOrders(tx, orders, effects)),
  });

  return {
    byId: (id: string) => byId(db, id),

    async byIds(ids: readonly string[]): Promise<Order[]> {
      const { rows } = await db.query<Order>(`SELECT ${ORDER_COLUMNS} FROM orders WHERE id = ANY($1::text[])`, [ids]);
      return rows;
    },

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
     * How many orders the expiry sweep cancelled (of one customer, when given). Matched on the
     * exact reason the sweep writes, which names the order's own due time: a reason typed into
     * cancelOrder that merely reads alike is not counted.
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

    /**
     * Stores a PENDING order and its OrderCreated in one transaction. With an idempotency key, a
     * retried request returns the order the first one created; the same key with other lines is
     * refused rather than silently answered with a different order.
     */
    create: (order: NewOrder, trace?: TraceContext) => intake.submit({ ...order, trace }),

    /**
     * The repair for orders nobody answered: sends again the OrderCreated of at most `limit`
     * orders PENDING for longer than the threshold, oldest first (a new event id, the same order
     * id and lines), through the outbox, in one transaction. Inventory answers a repeat with its
     * stored decision, so nothing is reserved twice.
     *
     * The threshold is `olderThanSeconds`, raised to the current answer lag when that is longer:
     * while Inventory's answers take that long, a younger PENDING order is most likely waiting in
     * its queue, and sending it again would only lengthen the queue it waits in (during a flash
     * sale, double it). An order sent again waits out the same threshold before it is sent once
     * more, and rows a concurrent run holds are skipped: safe at any time, from any number of
     * instances. `remaining` is how many are still due after this batch.
     */
    republishPending: (olderThanSeconds: number, limit: number): Promise<Reconciliation> =>
      db.transaction(async (tx) => {
        const lagSeconds = await answerLagSeconds(tx);
        const threshold = Math.max(olderThanSeconds, Math.ceil(lagSeconds));
        const due = `status = 'PENDING' AND created_at < now() - make_interval(secs => $1)
          AND (republished_at IS NULL OR republished_at < now() - make_interval(secs => $1))`;
        const { rows } = await tx.query<Order>(
          `WITH due AS (SELECT id FROM orders WHERE ${due} ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED)
           UPDATE orders o SET republished_at = now() FROM due WHERE o.id = due.id
           RETURNING ${ORDER_COLUMNS_OF_O}`,
          [threshold, limit],
        );
        rows.sort((a, b) => a.seq - b.seq);
        await effects.outbox.enqueue(
          tx,
          rows.map((o) => eventFor(o, effects.clock)),
        );
        // Those just sent count no more: their republished_at is this transaction's now().
        const { rows: left } = await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM orders WHERE ${due}`, [threshold]);
        return { ids: rows.map((o) => o.id), remaining: left[0]?.n ?? 0, olderThanSeconds: threshold, lagSeconds };
      }),

    /** Seconds since the oldest PENDING order was accepted (0 when there is none). */
    async oldestPendingAgeSeconds(): Promise<number> {
      // The first by seq (insertion order) through the (status, seq) index: one row read per
      // scrape, however many orders are PENDING during a peak.
      const { rows } = await db.query<{ age: number }>(
        `SELECT extract(epoch FROM now() - created_at)::float8 AS age FROM orders WHERE status = 'PENDING' ORDER BY seq LIMIT 1`,
      );
      return rows[0]?.age ?? 0;
    },

    /** The payment attempts of these orders, oldest first. */
    async paymentsOf(orderIds: readonly string[], perOrder = MAX_PAYMENTS_LISTED): Promise<Payment[]> {
      // At most `perOrder` each, read through the index: an order flooded with failed attempts
      // costs a page, not all of them.
      const { rows } = await db.query<Payment>(
        `SELECT p.* FROM unnest($1::text[]) AS o(id)
         CROSS JOIN LATERAL (
           SELECT ${PAYMENT_COLUMNS} FROM payments WHERE order_id = o.id ORDER BY created_at, payment_id LIMIT $2
         ) p`,
        [orderIds, perOrder],
      );
      return rows;
    },

    /**
     * Payments whose money is asked back, the latest asked first (of one customer's orders, when
     * given): what the payment service owes the customers, whether or not it has taken the requests yet.
     */
    async refundRequests(customerId: string | undefined, limit: number): Promise<Payment[]> {
      const { rows } = await db.query<Payment>(
        `SELECT ${PAYMENT_COLUMNS} FROM payments p
         WHERE outcome = 'REFUND_REQUESTED'
           AND ($1::text IS NULL OR EXISTS (SELECT 1 FROM orders o WHERE o.id = p.order_id AND o.customer_id = $1))
         ORDER BY updated_at DESC, payment_id DESC LIMIT $2`,
        [customerId ?? null, limit],
      );
      return rows;
    },

    /**
     * A payment reported over HTTP (a provider's callback, through the recordPayment mutation):
     * judged exactly as a PaymentSucceeded from the broker. Returns the payment as recorded (the
     * first record, for a repeated payment id).
     */
    recordPayment: (payment: PaymentEvent, trace?: TraceContext): Promise<Payment> =>
      db.transaction(async (tx) => {
        await applyPayments(tx, [payment], effects, [trace]);
        const { rows } = await tx.query<Payment>(`SELECT ${PAYMENT_COLUMNS} FROM payments WHERE payment_id = $1`, [payment.payment_id]);
        return rows[0] as Payment;
      }),

    /**
     * Cancels up to `limit` CONFIRMED orders whose payment hold is over, in one transaction; their
     * units go back through OrderCancelled -> StockReleased. Rows another instance (or a payment)
     * holds are skipped, so any number of instances may sweep at once and each order is cancelled
     * once. Returns how many were cancelled: fewer than `limit` when no more were due.
     */
    expireHolds: (limit: number): Promise<number> =>
      db.transaction(async (tx) => {
        const { rows } = await tx.query<Order>(
          `WITH due AS (
             SELECT id FROM orders
             WHERE status = 'CONFIRMED' AND payment_due_at IS NOT NULL AND payment_due_at <= now()
             ORDER BY payment_due_at LIMIT $1 FOR UPDATE SKIP LOCKED
           )
           UPDATE orders o SET status = 'CANCELLED', updated_at = now(), expired_at = now(), reason = ${EXPIRY_REASON}
           FROM due WHERE o.id = due.id
           RETURNING ${ORDER_COLUMNS_OF_O}`,
          [limit],
        );
        rows.sort((a, b) => a.seq - b.seq);
        await announce(tx, rows, effects, () => undefined);
        tx.afterCommit(() => effects.metrics?.holdsExpired.inc(rows.length));
        return rows.length;
      }),

    /** Seconds since the oldest unpaid hold should have been released (0 when none is overdue). */
    async overdueHoldSeconds(): Promise<number> {
      const { rows } = await db.query<{ overdue: number }>(
        `SELECT greatest(extract(epoch FROM now() - payment_due_at), 0)::float8 AS overdue FROM orders
         WHERE status = 'CONFIRMED' AND payment_due_at IS NOT NULL ORDER BY payment_due_at LIMIT 1`,
      );
      return rows[0]?.overdue ?? 0;
    },

    /** Cancels the order; with `customerId`, only if it is that customer's. */
    cancel: (id: string, reason: string | null, trace?: TraceContext, customerId?: string) =>
      act(id, 'CANCELLED', reason ?? 'Cancelled by request', trace, customerId),
    fulfil: (id: string, trace?: TraceContext) => act(id, 'FULFILLED', null, trace),
  };
}

export type OrdersRepository = ReturnType<typeof ordersRepository>;

/** What one run of the repair did. */
export interface Reconciliation {
  /** The orders whose OrderCreated was sent again, oldest first. */
  ids: string[];
  /** Orders still due after this run (by the same threshold). */
  remaining: number;
  /** The threshold applied: the one asked for, or the answer lag when that was longer. */
  olderThanSeconds: number;
  /** How long Inventory's latest answers took (see answerLagSeconds). */
  lagSeconds: number;
}

/** The answers the lag is measured on: the latest this many, of the last minute. */
const LAG_SAMPLE = { answers: 1_000, seconds: 60 } as const;

/**
 * How long Inventory's latest answers took, from the order's creation to its answer: the longest
 * of the latest LAG_SAMPLE.answers answers of the last LAG_SAMPLE.seconds (0 when there were
 * none). Orders sent again by the repair are left out: their wait counts the loss, not the queue.
 */
async function answerLagSeconds(q: Queryable): Promise<number> {
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

/**
 * Applies the Inventory Service's answers in one transaction, orders taken in id order so two
 * instances never deadlock. Only a PENDING order moves: a late or repeated answer (the order was
 * cancelled meanwhile, or already confirmed) changes nothing.
 */
export async function applyInventoryAnswers(
  tx: Transaction,
  answers: readonly InventoryAnswer[],
  effects: Effects,
  traces: readonly (TraceContext | undefined)[] = [],
): Promise<void> {
  // Inventory decides PENDING orders only: a rejection must never cancel a confirmed order (a
  // customer may cancel one; a stray answer may not). The first answer for an order wins;
  // StockReleased needs nothing here (the order was already CANCELLED when it was asked for).
  // A reservation brings the prices: the order's total is fixed here, and its hold starts.
  const decided = new Map<
    string,
    { order_id: string; status: OrderStatus; reason: string | null; priced_items: unknown; total_cents: number | null }
  >();
  for (const a of answers) {
    if (decided.has(a.order_id) || a.event === 'StockReleased') continue;
    decided.set(a.order_id, {
      order_id: a.order_id,
      status: a.event === 'StockReserved' ? 'CONFIRMED' : 'CANCELLED',
      reason: a.event === 'StockRejected' ? a.reason : null,
      priced_items: a.event === 'StockReserved' ? a.items : null,
      total_cents: a.event === 'StockReserved' ? orderTotal(a.items) : null,
    });
  }
  if (decided.size === 0) return;
  // Locked in id order by the statement that updates them, so two instances with overlapping
  // batches never deadlock, and the batch costs one round trip.
  const { rows: moved } = await tx.query<Order>(
    `WITH locked AS MATERIALIZED (
       SELECT id FROM orders WHERE id = ANY($2::text[]) AND status = 'PENDING' ORDER BY id FOR UPDATE
     )
     UPDATE orders o SET status = a.status, reason = COALESCE(a.reason, o.reason), updated_at = now(),
       priced_items = a.priced_items, total_cents = a.total_cents,
       currency = CASE WHEN a.status = 'CONFIRMED' THEN $3 END,
       payment_due_at = CASE WHEN a.status = 'CONFIRMED' AND $4::int > 0 THEN now() + make_interval(secs => $4::int) END,
       decided_at = now()
     FROM locked l, json_to_recordset($1::json) AS a(order_id text, status text, reason text, priced_items json, total_cents int)
     WHERE o.id = l.id AND a.order_id = l.id AND o.status = 'PENDING'
     RETURNING ${ORDER_COLUMNS_OF_O}`,
    [JSON.stringify([...decided.values()]), [...decided.keys()], effects.payments.currency, effects.payments.holdSeconds],
  );
  // OrderConfirmed / OrderCancelled continue the trace of the answer that decided the order.
  const traceOf = tracesByOrder(answers, traces);
  await announce(tx, moved, effects, (id) => traceOf.get(id));
}

/**
 * Applies payments in one transaction. The orders they name are locked first, in id order (as
 * every other writer of orders does), then their payment ids, so a payment and the expiry sweep,
 * or two instances with the same payment (for an order that exists or not), are decided one after
 * the other: a payment racing its order's expiry ends in exactly one outcome, and a repeat finds
 * the first one's record. A payment id already recorded changes nothing, unless it was recorded as
 * failed and now succeeded (the provider's retry of one attempt). Each payment's verdict is
 * recorded with it; what the order cannot keep is asked back with RefundRequested, and a
 * payment that arrives after the hold is over cancels the order at once.
 */
export async function applyPayments(
  tx: Transaction,
  payments: readonly PaymentEvent[],
  effects: Effects,
  traces: readonly (TraceContext | undefined)[] = [],
): Promise<void> {
  const orderIds = [...new Set(payments.map((p) => p.order_id))];
  const paymentIds = [...new Set(payments.map((p) => p.payment_id))];
  const { rows: orders } = await tx.query<PayableOrder & { id: string }>(
    `SELECT id, status, total_cents AS "totalCents", currency,
            $2::boolean AND payment_due_at IS NOT NULL AND payment_due_at <= now() AS "holdExpired"
     FROM orders WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`,
    [orderIds, paymentsOn(effects)],
  );
  // The payment ids are locked as well (after the orders, in key order, so two batches never
  // deadlock): a payment for an order that does not exist has no row to lock, and two callbacks
  // with its id must still take turns, the second finding the first one's record.
  await tx.query(
    `SELECT pg_advisory_xact_lock(${PAYMENT_ID_LOCKS}, key)
     FROM (SELECT DISTINCT hashtext(id) AS key FROM unnest($1::text[]) AS id ORDER BY key) AS ids`,
    [paymentIds],
  );
  // Read in a statement of its own, after the locks are granted, so a payment recorded by the
  // transaction this one waited for is seen (a statement's snapshot predates its lock waits).
  const { rows: known } = await tx.query<Payment>(`SELECT ${PAYMENT_COLUMNS} FROM payments WHERE payment_id = ANY($1::text[])`, [
    paymentIds,
  ]);
  const orderById = new Map(orders.map((o) => [o.id, o]));
  const recorded = new Map(known.map((p) => [p.paymentId, p.outcome]));
  const recordedFor = new Map(known.map((p) => [p.paymentId, p.orderId]));
  // A payment id names one payment of one order: the same id for another order is the payment
  // service's mistake, and applying it would file money under the wrong order.
  for (const payment of payments) {
    const first = recordedFor.get(payment.payment_id) ?? payment.order_id;
    if (first !== payment.order_id) {
      throw new ConflictError(`payment ${payment.payment_id} was recorded for order ${first}, not ${payment.order_id}`, {
        paymentId: payment.payment_id,
        orderId: first,
      });
    }
    recordedFor.set(payment.payment_id, first);
  }
  // By payment id: one row each, so a failure and its success in one batch are one upsert.
  const decided = new Map<
    string,
    { payment: PaymentEvent; outcome: Payment['outcome']; reason: string | null; trace: TraceContext | undefined }
  >();
  const paid = new Map<string, PaymentEvent>();
  const expired = new Set<string>();
  payments.forEach((payment, i) => {
    const before = recorded.get(payment.payment_id);
    if (before !== undefined && !(before === 'FAILED' && payment.event === 'PaymentSucceeded')) return;
    const order = orderById.get(payment.order_id);
    const verdict = judgePayment(order, payment);
    recorded.set(payment.payment_id, verdict.outcome);
    decided.set(payment.payment_id, { payment, outcome: verdict.outcome, reason: verdict.reason, trace: traces[i] });
    // Later payments of this batch see what this one did to the order.
    if (order && verdict.outcome === 'PAID') {
      order.status = 'PAID';
      paid.set(payment.order_id, payment);
    }
    if (order && verdict.expireOrder) {
      order.status = 'CANCELLED';
      expired.add(payment.order_id);
    }
  });
  if (decided.size === 0) return;

  const { rows: written } = await tx.query<Payment>(
    `INSERT INTO payments (payment_id, order_id, amount_cents, currency, outcome, reason)
     SELECT payment_id, order_id, amount_cents, currency, outcome, reason
     FROM json_to_recordset($1::json) AS x(payment_id text, order_id text, amount_cents int, currency text, outcome text, reason text)
     ON CONFLICT (payment_id) DO UPDATE SET
       amount_cents = excluded.amount_cents, currency = excluded.currency, outcome = excluded.outcome,
       reason = excluded.reason, updated_at = now()
     WHERE payments.outcome = 'FAILED' AND payments.order_id = excluded.order_id
     RETURNING ${PAYMENT_COLUMNS}`,
    [
      JSON.stringify(
        // In payment id order, so two transactions inserting the same ids never deadlock.
        [...decided.values()]
          .sort((a, b) => (a.payment.payment_id < b.payment.payment_id ? -1 : 1))
          .map(({ payment, outcome, reason }) => ({
            payment_id: payment.payment_id,
            order_id: payment.order_id,
            amount_cents: payment.event === 'PaymentSucceeded' ? payment.amount_cents : null,
            currency: payment.event === 'PaymentSucceeded' ? payment.currency : null,
            outcome,
            reason,
          })),
      ),
    ],
  );
  if (written.length !== decided.size) {
    // Cannot happen while every transaction recording a payment holds its id's lock: rolled back
    // rather than leave a payment decided and not recorded.
    throw new Error(`${decided.size - written.length} payment(s) of this batch were recorded by another transaction`);
  }
  const writtenById = new Map(written.map((p) => [p.paymentId, p]));
  tx.afterCommit(() => {
    for (const p of written) effects.metrics?.payments.inc({ outcome: p.outcome });
    if (expired.size > 0) effects.metrics?.holdsExpired.inc(expired.size);
  });
  const traceByPayment = new Map([...decided].map(([id, d]) => [id, d.trace]));

  const { rows: moved } = await tx.query<Order>(
    `UPDATE orders o SET status = x.status, updated_at = now(),
       paid_at = CASE WHEN x.status = 'PAID' THEN now() ELSE o.paid_at END,
       reason = CASE WHEN x.status = 'CANCELLED' THEN ${EXPIRY_REASON} ELSE o.reason END,
       expired_at = CASE WHEN x.status = 'CANCELLED' THEN now() END
     FROM json_to_recordset($1::json) AS x(id text, status text)
     WHERE o.id = x.id AND o.status = 'CONFIRMED'
     RETURNING ${ORDER_COLUMNS_OF_O}`,
    [
      JSON.stringify([
        ...[...paid.keys()].map((id) => ({ id, status: 'PAID' })),
        ...[...expired].map((id) => ({ id, status: 'CANCELLED' })),
      ]),
    ],
  );
  moved.sort((a, b) => a.seq - b.seq);
  const paymentOf = (orderId: string) => {
    const payment = paid.get(orderId);
    return payment ? writtenById.get(payment.payment_id) : undefined;
  };
  await announce(tx, moved, effects, (orderId) => traceByPayment.get(paid.get(orderId)?.payment_id ?? ''), paymentOf);
  await effects.outbox.enqueue(
    tx,
    written
      .filter((p) => p.outcome === 'REFUND_REQUESTED')
      .map((p) => ({ ...refundFor(p, effects.clock), headers: traceHeaders(traceByPayment.get(p.paymentId)) })),
  );
}
