import { EXCHANGES, ROUTING_KEYS, type OrderCancelled, type OrderFulfilled, type StockReleased } from '@stockflow/contracts';
import { traceHeaders, type Queryable, type TraceContext, type Transaction } from '@stockflow/platform';
import { answerFor } from '../messaging/answers.ts';
import type { Decision } from '../domain/reservation.ts';
import { countDecisions, type Effects } from './reservations.ts';

export const CANCELLED_BEFORE_RESERVATION = 'Order cancelled before stock was reserved';

type Movement = 'RELEASE' | 'SALE';

/**
 * Moves what is held for an order out of `reserved`: back to `available` (RELEASE) or on to
 * `sold` (SALE), with a ledger row per product. Product rows are locked in id order.
 */
async function settleHeld(tx: Queryable, orderId: string, kind: Movement): Promise<void> {
  const { rows: held } = await tx.query<{ product_id: number; quantity: number }>(
    `SELECT product_id, quantity FROM reservations WHERE order_id = $1 AND status = 'HELD' ORDER BY product_id FOR UPDATE`,
    [orderId],
  );
  if (held.length === 0) return;
  await tx.query('SELECT 1 FROM products WHERE id = ANY($1::int[]) ORDER BY id FOR UPDATE', [held.map((h) => h.product_id)]);
  const release = kind === 'RELEASE';
  await tx.query(
    `WITH line AS (
       SELECT product_id, quantity FROM reservations WHERE order_id = $1 AND status = 'HELD'
     ), updated AS (
       UPDATE products p SET
         available = p.available + CASE WHEN $2 THEN l.quantity ELSE 0 END,
         reserved = p.reserved - l.quantity,
         sold = p.sold + CASE WHEN $2 THEN 0 ELSE l.quantity END,
         updated_at = now()
       FROM line l WHERE p.id = l.product_id
       RETURNING p.id, l.quantity, p.available, p.reserved, p.sold
     ), settled AS (
       UPDATE reservations SET status = $3, updated_at = now() WHERE order_id = $1 AND status = 'HELD'
     )
     INSERT INTO stock_movements (product_id, kind, quantity, available_change, reserved_change, sold_change,
                                  available_after, reserved_after, sold_after, order_id)
     SELECT id, $4, quantity, CASE WHEN $2 THEN quantity ELSE 0 END, -quantity, CASE WHEN $2 THEN 0 ELSE quantity END,
            available, reserved, sold, $1
     FROM updated ORDER BY id`,
    [orderId, release, release ? 'RELEASED' : 'SOLD', kind],
  );
}

/**
 * Releases everything held for a cancelled order and answers StockReleased. A cancellation that
 * overtakes its OrderCreated leaves a rejection decision behind, so the late OrderCreated reserves
 * nothing and is answered as rejected.
 */
export async function applyOrderCancelled(
  tx: Transaction,
  event: OrderCancelled,
  { clock, outbox, metrics }: Effects,
  trace?: TraceContext,
): Promise<void> {
  const eventId = clock.newId();
  const rejection: Decision = { orderId: event.order_id, outcome: 'REJECTED', reason: CANCELLED_BEFORE_RESERVATION, lines: [] };
  const tombstone = answerFor(rejection, { eventId, occurredAt: clock.now() });
  // Waits for an OrderCreated of the same order being decided right now, then does nothing.
  const { rowCount } = await tx.query(
    `INSERT INTO order_decisions (order_id, outcome, reason, event, routing_key) VALUES ($1, 'REJECTED', $2, $3, $4)
     ON CONFLICT (order_id) DO NOTHING`,
    [event.order_id, CANCELLED_BEFORE_RESERVATION, JSON.stringify(tombstone.body), tombstone.routingKey],
  );
  if (rowCount > 0) countDecisions(tx, metrics, [rejection]);
  await settleHeld(tx, event.order_id, 'RELEASE');
  const { rows } = await tx.query<{ product_id: number; quantity: number }>(
    `SELECT product_id, quantity FROM reservations WHERE order_id = $1 AND status = 'RELEASED' ORDER BY product_id`,
    [event.order_id],
  );
  const body: StockReleased = {
    event: 'StockReleased',
    order_id: event.order_id,
    items: rows,
    event_id: clock.newId(),
    occurred_at: clock.now().toISOString(),
  };
  await outbox.enqueue(tx, [
    {
      exchange: EXCHANGES.inventory,
      routingKey: ROUTING_KEYS.stockReleased,
      messageId: body.event_id as string,
      body,
      headers: traceHeaders(trace),
    },
  ]);
}

/** The order shipped: what is held for it becomes sold. Repeats find nothing held and do nothing. */
export async function applyOrderFulfilled(tx: Queryable, event: OrderFulfilled): Promise<void> {
  await settleHeld(tx, event.order_id, 'SALE');
}
