import { routeOf, type BackorderFilled } from '@stockflow/contracts';
import type { Transaction } from '@stockflow/db';
import { fillBackorders } from '../domain/reservation.ts';
import type { StockLocation } from './catalog.ts';
import type { Effects } from './reservations.ts';

/** What a stock arrival needs besides the transaction: ids and time for BackorderFilled, and the outbox it goes out through. */
export type ArrivalEffects = Pick<Effects, 'clock' | 'outbox'>;

/**
 * Stock arrived at a location (restock, adjustment up, transfer in, units a cancelled order gives
 * back): the product's backordered lines are filled from what the location has, oldest order
 * first, under the product's lock the caller holds. Each filled order's units are held there from now on, and the order is told with
 * BackorderFilled, through the outbox in this transaction. Says whether any order was filled.
 */
export async function fillFromArrival(
  tx: Transaction,
  productId: number,
  location: Pick<StockLocation, 'id' | 'code'>,
  { clock, outbox }: ArrivalEffects,
): Promise<boolean> {
  const { rows } = await tx.query<{ available: number; waiting: { order_id: string; backordered: number }[] }>(
    `SELECT (SELECT available FROM stock_levels WHERE product_id = $1 AND location_id = $2) AS available,
            (SELECT coalesce(json_agg(w ORDER BY w.seq), '[]') FROM (
               SELECT order_id, backordered, seq FROM reservations
               WHERE product_id = $1 AND status = 'HELD' AND backordered > 0) w) AS waiting`,
    [productId, location.id],
  );
  const { available, waiting } = rows[0] as (typeof rows)[number];
  const fills = fillBackorders(
    waiting.map((w) => ({ orderId: w.order_id, backordered: w.backordered })),
    available,
  );
  if (fills.length === 0) return false;
  await tx.query(
    `WITH fill AS (
       SELECT ord, order_id, quantity FROM json_to_recordset($3::json) AS x(ord int, order_id text, quantity int)
     ), total AS (
       SELECT sum(quantity)::int AS quantity FROM fill
     ), updated AS (
       UPDATE products p SET available = p.available - t.quantity, reserved = p.reserved + t.quantity,
                             backordered = p.backordered - t.quantity, updated_at = now()
       FROM total t WHERE p.id = $1
       RETURNING p.available + t.quantity AS available_before, p.reserved - t.quantity AS reserved_before, p.sold
     ), level AS (
       UPDATE stock_levels s SET available = s.available - t.quantity, reserved = s.reserved + t.quantity
       FROM total t WHERE s.product_id = $1 AND s.location_id = $2
     ), waiting AS (
       UPDATE reservations r SET backordered = r.backordered - f.quantity, updated_at = now()
       FROM fill f WHERE r.order_id = f.order_id AND r.product_id = $1
     ), allocated AS (
       INSERT INTO reservation_allocations (order_id, product_id, location_id, quantity)
       SELECT order_id, $1, $2, quantity FROM fill
       ON CONFLICT (order_id, product_id, location_id) DO UPDATE SET quantity = reservation_allocations.quantity + EXCLUDED.quantity
     )
     INSERT INTO stock_movements (product_id, location_id, kind, quantity, available_change, reserved_change, sold_change,
                                  available_after, reserved_after, sold_after, order_id, reason)
     SELECT $1, $2, 'RESERVATION', f.quantity, -f.quantity, f.quantity, 0,
            u.available_before - sum(f.quantity) OVER w, u.reserved_before + sum(f.quantity) OVER w, u.sold,
            f.order_id, 'backorder filled'
     FROM fill f, updated u
     WINDOW w AS (ORDER BY f.ord)
     ORDER BY f.ord`,
    [productId, location.id, JSON.stringify(fills.map((f, ord) => ({ ord, order_id: f.orderId, quantity: f.quantity })))],
  );
  const occurredAt = clock.now().toISOString();
  await outbox.enqueue(
    tx,
    fills.map((f) => {
      const body: BackorderFilled = {
        event: 'BackorderFilled',
        event_id: clock.newId(),
        occurred_at: occurredAt,
        order_id: f.orderId,
        items: [{ product_id: productId, quantity: f.quantity, location_code: location.code }],
      };
      return { ...routeOf(body.event), messageId: body.event_id, body };
    }),
  );
  return true;
}
