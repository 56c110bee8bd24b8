import type { OrderLine, RejectedLine } from '@stockflow/contracts';

export interface OrderRequest {
  orderId: string;
  items: OrderLine[];
}

/** What one location has of a product right now. */
export interface LocationStock {
  locationId: number;
  code: string;
  /** Allocation prefers the lowest number, then the code. */
  priority: number;
  available: number;
}

/** A product's stock as a decision sees it: per location, and how many more units may be backordered. */
export interface ProductStock {
  levels: LocationStock[];
  backorderRoom: number;
}

/** Units held at one location. */
export interface Allocated {
  locationId: number;
  code: string;
  quantity: number;
}

/** A line (or a product's summed demand) as reserved: where its units on hand are held, and how many are backordered. */
export interface AllocatedLine extends OrderLine {
  allocations: Allocated[];
  backordered: number;
}

export type Decision =
  | { orderId: string; outcome: 'RESERVED'; items: AllocatedLine[]; perProduct: AllocatedLine[] }
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

const preferred = (a: LocationStock, b: LocationStock) => a.priority - b.priority || (a.code < b.code ? -1 : a.code > b.code ? 1 : 0);

const onHand = (stock: ProductStock) => stock.levels.reduce((sum, level) => sum + level.available, 0);

/**
 * Where an order's units come from. One location that can supply every line whole is preferred
 * (a single shipment), the most preferred such one; otherwise each line takes from the locations
 * in order of preference, split as needed, and what no location has is backordered. The caller
 * has checked that every line's shortfall fits its backorder room.
 */
function allocate(lines: readonly OrderLine[], stockOf: (productId: number) => ProductStock): AllocatedLine[] {
  const levelAt = (productId: number, locationId: number) => stockOf(productId).levels.find((l) => l.locationId === locationId);
  const candidates = new Map<number, LocationStock>();
  for (const line of lines) for (const level of stockOf(line.product_id).levels) candidates.set(level.locationId, level);
  const single = [...candidates.values()]
    .sort(preferred)
    .find((location) => lines.every((line) => (levelAt(line.product_id, location.locationId)?.available ?? 0) >= line.quantity));
  if (single) {
    return lines.map((line) => ({
      ...line,
      allocations: [{ locationId: single.locationId, code: single.code, quantity: line.quantity }],
      backordered: 0,
    }));
  }
  return lines.map((line) => {
    let left = line.quantity;
    const allocations: Allocated[] = [];
    for (const level of stockOf(line.product_id).levels) {
      const take = Math.min(left, level.available);
      if (take > 0) allocations.push({ locationId: level.locationId, code: level.code, quantity: take });
      left -= take;
    }
    return { ...line, allocations, backordered: left };
  });
}

/**
 * The order's own lines, as received, given the units allocated to their products: lines naming
 * the same product take its allocations in turn, in order of preference, and its backordered
 * units last.
 */
function itemsOf(items: readonly OrderLine[], perProduct: readonly AllocatedLine[]): AllocatedLine[] {
  const left = new Map(perProduct.map((p) => [p.product_id, p.allocations.map((a) => ({ ...a }))]));
  return items.map((line) => {
    const pool = left.get(line.product_id) ?? [];
    let wanted = line.quantity;
    const allocations: Allocated[] = [];
    for (const a of pool) {
      const take = Math.min(wanted, a.quantity);
      if (take === 0) continue;
      allocations.push({ ...a, quantity: take });
      a.quantity -= take;
      wanted -= take;
    }
    return { ...line, allocations, backordered: wanted };
  });
}

/**
 * Decides a batch of orders in arrival order against the stock on hand, all or nothing per order:
 * an order is reserved only if every one of its products exists and has enough left after the
 * orders decided before it, counting what may still be backordered. `stock` maps product id to
 * its stock and is updated in place (levels and backorder room), so the caller can write the
 * final levels back.
 */
export function decideOrders(orders: readonly OrderRequest[], stock: Map<number, ProductStock>): Decision[] {
  for (const product of stock.values()) product.levels.sort(preferred);
  return orders.map((order) => {
    const perProduct = sumLines(order.items);
    const problems: RejectedLine[] = [];
    for (const line of perProduct) {
      const product = stock.get(line.product_id);
      if (product === undefined) {
        problems.push({ product_id: line.product_id, requested: line.quantity, available: null, problem: 'UNKNOWN_PRODUCT' });
        continue;
      }
      const available = onHand(product);
      if (line.quantity - available > product.backorderRoom) {
        problems.push({ product_id: line.product_id, requested: line.quantity, available, problem: 'INSUFFICIENT_STOCK' });
      }
    }
    if (problems.length > 0) {
      return { orderId: order.orderId, outcome: 'REJECTED', reason: rejectionReason(problems), lines: problems };
    }
    const stockOf = (productId: number) => stock.get(productId) as ProductStock;
    const allocated = allocate(perProduct, stockOf);
    for (const line of allocated) {
      const product = stockOf(line.product_id);
      for (const a of line.allocations) {
        const level = product.levels.find((l) => l.locationId === a.locationId) as LocationStock;
        level.available -= a.quantity;
      }
      product.backorderRoom -= line.backordered;
    }
    return { orderId: order.orderId, outcome: 'RESERVED', items: itemsOf(order.items, allocated), perProduct: allocated };
  });
}

/** One waiting line of a product: an order's backordered units, oldest first. */
export interface WaitingLine {
  orderId: string;
  backordered: number;
}

/**
 * Stock arrived: the waiting lines are filled oldest first, each as far as the units go. Returns
 * how many units each filled order gets (orders left waiting are not listed).
 */
export function fillBackorders(waiting: readonly WaitingLine[], arrived: number): { orderId: string; quantity: number }[] {
  const fills: { orderId: string; quantity: number }[] = [];
  let left = arrived;
  for (const line of waiting) {
    if (left === 0) break;
    const quantity = Math.min(left, line.backordered);
    if (quantity > 0) fills.push({ orderId: line.orderId, quantity });
    left -= quantity;
  }
  return fills;
}
