import { z } from 'zod';

/**
 * The wire contract shared with other teams' services. Consumers accept a message carrying
 * exactly the documented fields and ignore unknown extras (zod objects strip them), so
 * producers may add `event_id`, `occurred_at` and rejection details without breaking anyone.
 */

export const ORDER_ID_MAX_LENGTH = 100;
/** Lines per order. The contract sets no bound; an unbounded array is an easy way to stall a consumer. */
export const MAX_LINES_PER_ORDER = 500;
/** Postgres `integer`: the largest product id and quantity we can store. */
export const MAX_INT32 = 2_147_483_647;

export const OrderId = z
  .string()
  .min(1, 'order_id must not be empty')
  .max(ORDER_ID_MAX_LENGTH, `order_id must be at most ${ORDER_ID_MAX_LENGTH} characters`);

export const ProductId = z.number().int('product_id must be an integer').positive('product_id must be positive').max(MAX_INT32);

export const Quantity = z.number().int('quantity must be an integer').positive('quantity must be positive').max(MAX_INT32);

export const OrderLine = z.object({
  product_id: ProductId,
  quantity: Quantity,
});
export type OrderLine = z.infer<typeof OrderLine>;

const Lines = z.array(OrderLine).min(1, 'items must not be empty').max(MAX_LINES_PER_ORDER);

/** Optional metadata a producer may add; never required from other teams. */
const Meta = {
  event_id: z.string().min(1).max(200).optional(),
  occurred_at: z.string().optional(),
};

/** An event about an order's lines: `OrderCreated`, `StockReserved`, `OrderConfirmed`. */
const linesEvent = <Name extends string>(name: Name) => z.object({ event: z.literal(name), order_id: OrderId, items: Lines, ...Meta });

export const OrderCreated = linesEvent('OrderCreated');
export type OrderCreated = z.infer<typeof OrderCreated>;

export const StockReserved = linesEvent('StockReserved');
export type StockReserved = z.infer<typeof StockReserved>;

/** Why one line of a rejected order could not be served. */
export const RejectedLine = z.object({
  product_id: ProductId,
  requested: z.number().int(),
  /** null when the product does not exist. */
  available: z.number().int().nullable(),
  problem: z.enum(['UNKNOWN_PRODUCT', 'INSUFFICIENT_STOCK']),
});
export type RejectedLine = z.infer<typeof RejectedLine>;

export const StockRejected = z.object({
  event: z.literal('StockRejected'),
  order_id: OrderId,
  reason: z.string().min(1),
  lines: z.array(RejectedLine).optional(),
  ...Meta,
});
export type StockRejected = z.infer<typeof StockRejected>;

/** The order was cancelled (by the customer, an operator, or because stock was rejected). */
export const OrderCancelled = z.object({
  event: z.literal('OrderCancelled'),
  order_id: OrderId,
  reason: z.string().max(500).optional(),
  ...Meta,
});
export type OrderCancelled = z.infer<typeof OrderCancelled>;

/** The order was shipped: what is held for it becomes sold. */
export const OrderFulfilled = z.object({
  event: z.literal('OrderFulfilled'),
  order_id: OrderId,
  ...Meta,
});
export type OrderFulfilled = z.infer<typeof OrderFulfilled>;

/** Stock for the order was confirmed; for notification, shipping and the like. */
export const OrderConfirmed = linesEvent('OrderConfirmed');
export type OrderConfirmed = z.infer<typeof OrderConfirmed>;

/** What the Inventory Service released for a cancelled order (every line ever released; may be empty). */
export const StockReleased = z.object({
  event: z.literal('StockReleased'),
  order_id: OrderId,
  items: z.array(OrderLine).max(MAX_LINES_PER_ORDER),
  ...Meta,
});
export type StockReleased = z.infer<typeof StockReleased>;

/** Everything the Order Service consumes from `inventory`, told apart by `event`. */
export const InventoryAnswer = z.discriminatedUnion('event', [StockReserved, StockRejected, StockReleased]);
export type InventoryAnswer = z.infer<typeof InventoryAnswer>;
