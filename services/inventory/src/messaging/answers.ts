import { routeOf, type StockRejected, type StockReserved, type OutgoingMessage } from '@stockflow/contracts';
import type { Decision } from '../domain/reservation.ts';

export interface EventMeta {
  eventId: string;
  occurredAt: Date;
}

/**
 * The answer the Inventory Service owes for a decision, in the wire contract's shape. A reserved
 * line carries its product's price at this moment (`prices`, by product id; a product without a
 * price has none), which is what the order costs whatever the price becomes later.
 */
export function answerFor(decision: Decision, meta: EventMeta, prices: ReadonlyMap<number, number | null> = new Map()): OutgoingMessage {
  const common = { event_id: meta.eventId, occurred_at: meta.occurredAt.toISOString() };
  if (decision.outcome === 'RESERVED') {
    const items = decision.items.map(({ product_id, quantity, allocations, backordered }) => {
      const price = prices.get(product_id);
      return {
        product_id,
        quantity,
        ...(price === undefined || price === null ? {} : { unit_price_cents: price }),
        allocations: allocations.map((a) => ({ location_code: a.code, quantity: a.quantity })),
        backordered_quantity: backordered,
      };
    });
    const body: StockReserved = { event: 'StockReserved', order_id: decision.orderId, items, ...common };
    return { ...routeOf(body.event), messageId: meta.eventId, body };
  }
  const body: StockRejected = {
    event: 'StockRejected',
    order_id: decision.orderId,
    reason: decision.reason,
    lines: decision.lines,
    ...common,
  };
  return { ...routeOf(body.event), messageId: meta.eventId, body };
}
