import { routeOf, type OrderCancelled, type OrderFulfilled, type StockReleased } from '@stockflow/contracts';
import { traceHeaders, tracesByOrder, type TraceContext } from '@stockflow/observability';
import type { Queryable, Transaction } from '@stockflow/db';
import { answerFor } from '../messaging/answers.ts';
import type { Decision } from '../domain/reservation.ts';
import { fillFromArrival } from './backorders.ts';
import { countDecisions, type Effects } from './reservations.ts';

export const CANCELLED_BEFORE_RESERVATION = 'Order cancelled before stock was reserved';

type Movement = 'RELEASE' | 'SALE';

/** Units a release gave back to a location, of a product whose backorder still waits. */
interface Returned {
  product_id: number;
  location_id: number;
  code: string;
}

/**
 * Moves what is held for the orders out of `reserved`, at the locations it is held at: back to
 * `available` (RELEASE) or on to `sold` (SALE), with a ledger row per order, product and location;
 * the lines' backordered units are given up (their place in the backorder with them). Their
 * products are locked in id order first, as every other writer of stock takes them, so concurrent
 * batches never deadlock; every held line, its allocations and its level change only under its
 * product's lock, so what is read after it is what the last writer left. The ledger rows carry the
 * product's counters after each row, computed with a running sum per product. Returns where units
 * went back to products that still have backordered lines, in order of allocation preference.
 */
async function settleHeld(tx: Queryable, orderIds: readonly string[], kind: Movement): Promise<Returned[]> {
  const { rows: held } = await tx.query<{ product_id: number }>(
    `SELECT DISTINCT product_id FROM reservations WHERE order_id = ANY($1::text[]) AND status = 'HELD' ORDER BY product_id`,
    [orderIds],
  );
  if (held.length === 0) return [];
  const productIds = held.map((h) => h.product_id);
  await tx.query('SELECT 1 FROM products WHERE id = ANY($1::int[]) ORDER BY id FOR UPDATE', [productIds]);
  const release = kind === 'RELEASE';
  const { rows: returned } = await tx.query<Returned>(
    `WITH line AS (
       SELECT order_id, product_id, quantity, backordered FROM reservations
       WHERE order_id = ANY($1::text[]) AND status = 'HELD' AND product_id = ANY($5::int[])
     ), alloc AS (
       SELECT row_number() OVER (ORDER BY a.order_id, a.product_id, a.location_id) AS ord,
              a.order_id, a.product_id, a.location_id, a.quantity
       FROM reservation_allocations a JOIN line l ON l.order_id = a.order_id AND l.product_id = a.product_id
     ), totals AS (
       SELECT product_id, sum(quantity - backordered)::int AS held, sum(backordered)::int AS backordered FROM line GROUP BY product_id
     ), updated AS (
       UPDATE products p SET
         available = p.available + CASE WHEN $2 THEN t.held ELSE 0 END,
         reserved = p.reserved - t.held,
         sold = p.sold + CASE WHEN $2 THEN 0 ELSE t.held END,
         backordered = p.backordered - t.backordered,
         updated_at = now()
       FROM totals t WHERE p.id = t.product_id
       RETURNING p.id,
                 p.available - CASE WHEN $2 THEN t.held ELSE 0 END AS available_before,
                 p.reserved + t.held AS reserved_before,
                 p.sold - CASE WHEN $2 THEN 0 ELSE t.held END AS sold_before,
                 p.backordered AS waiting
     ), level_totals AS (
       SELECT product_id, location_id, sum(quantity)::int AS quantity FROM alloc GROUP BY product_id, location_id
     ), levels AS (
       UPDATE stock_levels s SET
         available = s.available + CASE WHEN $2 THEN t.quantity ELSE 0 END,
         reserved = s.reserved - t.quantity,
         sold = s.sold + CASE WHEN $2 THEN 0 ELSE t.quantity END
       FROM level_totals t WHERE s.product_id = t.product_id AND s.location_id = t.location_id
     ), settled AS (
       UPDATE reservations SET status = $3, updated_at = now()
       WHERE order_id = ANY($1::text[]) AND status = 'HELD' AND product_id = ANY($5::int[])
     ), moved AS (
       INSERT INTO stock_movements (product_id, location_id, kind, quantity, available_change, reserved_change, sold_change,
                                    available_after, reserved_after, sold_after, order_id)
       SELECT a.product_id, a.location_id, $4, a.quantity,
              CASE WHEN $2 THEN a.quantity ELSE 0 END, -a.quantity, CASE WHEN $2 THEN 0 ELSE a.quantity END,
              u.available_before + CASE WHEN $2 THEN sum(a.quantity) OVER w ELSE 0 END,
              u.reserved_before - sum(a.quantity) OVER w,
              u.sold_before + CASE WHEN $2 THEN 0 ELSE sum(a.quantity) OVER w END,
              a.order_id
       FROM alloc a JOIN updated u ON u.id = a.product_id
       WINDOW w AS (PARTITION BY a.product_id ORDER BY a.ord)
       ORDER BY a.ord
     )
     SELECT DISTINCT a.product_id, a.location_id, l.code, l.priority
     FROM alloc a JOIN updated u ON u.id = a.product_id JOIN stock_locations l ON l.id = a.location_id
     WHERE $2 AND u.waiting > 0
     ORDER BY a.product_id, l.priority, l.code`,
    [orderIds, release, release ? 'RELEASED' : 'SOLD', kind, productIds],
  );
  return returned;
}

/**
 * Releases everything held for a batch of cancelled orders and answers each OrderCancelled with
 * StockReleased. A cancellation that overtakes its OrderCreated leaves a rejection decision
 * behind, so the late OrderCreated reserves nothing and is answered as rejected.
 *
 * On a sold-out doorbuster almost every order is rejected and then cancelled by the Order
 * Service; applied one per transaction, those cancellations cost more than the orders did.
 */
export async function applyOrderCancelledBatch(
  tx: Transaction,
  events: readonly OrderCancelled[],
  { clock, outbox, metrics }: Effects,
  traces: readonly (TraceContext | undefined)[] = [],
): Promise<void> {
  const orderIds = [...new Set(events.map((e) => e.order_id))].sort();
  const now = clock.now();
  const tombstones = orderIds.map((orderId) => {
    const rejection: Decision = { orderId, outcome: 'REJECTED', reason: CANCELLED_BEFORE_RESERVATION, lines: [] };
    const answer = answerFor(rejection, { eventId: clock.newId(), occurredAt: now });
    return {
      rejection,
      row: { order_id: orderId, reason: CANCELLED_BEFORE_RESERVATION, event: answer.body, routing_key: answer.routingKey },
    };
  });
  // Inserted in order id order (two batches never wait on each other crosswise), each waiting for
  // an OrderCreated of the same order being decided right now; an order decided before keeps its
  // decision.
  const { rows: recorded } = await tx.query<{ order_id: string }>(
    `INSERT INTO order_decisions (order_id, outcome, reason, event, routing_key)
     SELECT order_id, 'REJECTED', reason, event, routing_key
     FROM json_to_recordset($1::json) AS x(order_id text, reason text, event json, routing_key text)
     ON CONFLICT (order_id) DO NOTHING
     RETURNING order_id`,
    [JSON.stringify(tombstones.map((t) => t.row))],
  );
  const newlyRejected = new Set(recorded.map((r) => r.order_id));
  countDecisions(
    tx,
    metrics,
    tombstones.filter((t) => newlyRejected.has(t.rejection.orderId)).map((t) => t.rejection),
  );
  // Units given back go to the backorder first, oldest order first, as units received do.
  for (const r of await settleHeld(tx, orderIds, 'RELEASE')) {
    await fillFromArrival(tx, r.product_id, { id: r.location_id, code: r.code }, { clock, outbox });
  }
  const { rows: released } = await tx.query<{ order_id: string; product_id: number; quantity: number }>(
    `SELECT order_id, product_id, quantity FROM reservations WHERE order_id = ANY($1::text[]) AND status = 'RELEASED' ORDER BY order_id, product_id`,
    [orderIds],
  );
  const linesOf = new Map<string, { product_id: number; quantity: number }[]>();
  for (const { order_id, product_id, quantity } of released) {
    const lines = linesOf.get(order_id) ?? [];
    lines.push({ product_id, quantity });
    linesOf.set(order_id, lines);
  }
  // Every OrderCancelled is answered, a repeat within the batch too; each answer continues its trace.
  const traceOf = tracesByOrder(events, traces);
  await outbox.enqueue(
    tx,
    events.map((event) => {
      const body: StockReleased = {
        event: 'StockReleased',
        order_id: event.order_id,
        items: linesOf.get(event.order_id) ?? [],
        event_id: clock.newId(),
        occurred_at: now.toISOString(),
      };
      return {
        ...routeOf(body.event),
        messageId: body.event_id as string,
        body,
        headers: traceHeaders(traceOf.get(event.order_id)),
      };
    }),
  );
}

/** The orders shipped: what is held for them becomes sold. Repeats find nothing held and do nothing. */
export async function applyOrderFulfilledBatch(tx: Queryable, events: readonly OrderFulfilled[]): Promise<void> {
  await settleHeld(tx, [...new Set(events.map((e) => e.order_id))].sort(), 'SALE');
}
