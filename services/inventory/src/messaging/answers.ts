import { EXCHANGES, ROUTING_KEYS, type StockRejected, type StockReserved } from '@stockflow/contracts';
import type { OutgoingMessage } from '@stockflow/platform';
import type { Decision } from '../domain/reservation.ts';

export interface EventMeta {
  eventId: string;
  occurredAt: Date;
}

/** The answer the Inventory Service owes for a decision, in the wire contract's shape. */
export function answerFor(decision: Decision, meta: EventMeta): OutgoingMessage {
  const common = { event_id: meta.eventId, occurred_at: meta.occurredAt.toISOString() };
  if (decision.outcome === 'RESERVED') {
    const body: StockReserved = { event: 'StockReserved', order_id: decision.orderId, items: decision.items, ...common };
    return { exchange: EXCHANGES.inventory, routingKey: ROUTING_KEYS.stockReserved, messageId: meta.eventId, body };
  }
  const body: StockRejected = {
    event: 'StockRejected',
    order_id: decision.orderId,
    reason: decision.reason,
    lines: decision.lines,
    ...common,
  };
  return { exchange: EXCHANGES.inventory, routingKey: ROUTING_KEYS.stockRejected, messageId: meta.eventId, body };
}
