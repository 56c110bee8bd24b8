import type { OrderLine, RejectedLine } from '@stockflow/contracts';

export interface OrderRequest {
  orderId: string;
  items: OrderLine[];
}

export type Decision =
  | { orderId: string; outcome: 'RESERVED'; items: OrderLine[]; perProduct: OrderLine[] }
  | { orderId: string; outcome: 'REJECTED'; reason: string; lines: RejectedLine[] };

/** Lines naming the same product are one demand: summed, and sorted by product id. */
export function sumLines(items: readonly OrderLine[]): OrderLine[] {
  const totals = new Map<number, number>();
  for (const { product_id, quantity } of items) totals.set(product_id, (totals.get(product_id) ?? 0) + quantity);
  return [...totals].sort(([a], [b]) => a - b).map(([product_id, quantity]) => ({ product_id, quantity }));
}

export function rejectionReason(lines: readonly RejectedLine[]): string {
  const short = lines.filter((l) => l.problem === 'INSUFFICIENT_STOCK');
  const unknown = lines.filter((l) => l.problem === 'UNKNOWN_PRODUCT');
  const parts: string[] = [];
  // "Insufficient stock" first: the wording other teams' services already match on.
  if (short.length > 0) {
    parts.push(
      `Insufficient stock: ${short.map((l) => `product ${l.product_id} (requested ${l.requested}, available ${l.available ?? 0})`).join(', ')}`,
    );
  }
  if (unknown.length > 0) {
    parts.push(`Unknown product${unknown.length > 1 ? 's' : ''}: ${unknown.map((l) => l.product_id).join(', ')}`);
  }
  return parts.join('; ');
}

/**
 * Decides a batch of orders in arrival order against the stock on hand, all or nothing per order:
 * an order is reserved only if every one of its products exists and has enough left after the
 * orders decided before it. `available` maps product id to units available and is updated in
 * place, so the caller can write the final levels back.
 */
export function decideOrders(orders: readonly OrderRequest[], available: Map<number, number>): Decision[] {
  return orders.map((order) => {
    const perProduct = sumLines(order.items);
    const problems: RejectedLine[] = [];
    for (const line of perProduct) {
      const onHand = available.get(line.product_id);
      if (onHand === undefined) {
        problems.push({ product_id: line.product_id, requested: line.quantity, available: null, problem: 'UNKNOWN_PRODUCT' });
      } else if (onHand < line.quantity) {
        problems.push({ product_id: line.product_id, requested: line.quantity, available: onHand, problem: 'INSUFFICIENT_STOCK' });
      }
    }
    if (problems.length > 0) {
      return { orderId: order.orderId, outcome: 'REJECTED', reason: rejectionReason(problems), lines: problems };
    }
    for (const line of perProduct) available.set(line.product_id, (available.get(line.product_id) ?? 0) - line.quantity);
    return { orderId: order.orderId, outcome: 'RESERVED', items: order.items, perProduct };
  });
}
