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

export const OrderCreated = z.object({
  event: z.literal('OrderCreated'),
  order_id: OrderId,
  items: Lines,
  ...Meta,
});
export type OrderCreated = z.infer<typeof OrderCreated>;

export const StockReserved = z.object({
  event: z.literal('StockReserved'),
  order_id: OrderId,
  items: Lines,
  ...Meta,
});
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

export type InventoryEvent = StockReserved | StockRejected;
export type OrderEvent = OrderCreated;
