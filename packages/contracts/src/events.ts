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

/** A product id as a client writes it (GraphQL's `ID` is a string) to the contract's integer; undefined if it is none. */
export function productIdFrom(raw: string | number): number | undefined {
  const text = String(raw).trim();
  const id = /^\d{1,10}$/.test(text) ? Number(text) : Number.NaN;
  return Number.isInteger(id) && id > 0 && id <= MAX_INT32 ? id : undefined;
}

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

/** An event about an order's lines: `OrderCreated`, `OrderConfirmed`. */
const linesEvent = <Name extends string>(name: Name) => z.object({ event: z.literal(name), order_id: OrderId, items: Lines, ...Meta });

export const OrderCreated = linesEvent('OrderCreated');
export type OrderCreated = z.infer<typeof OrderCreated>;

/** Cents of the shop's currency; a Postgres `integer` holds it. */
export const Cents = z.number().int('must be a whole number of cents').nonnegative('must not be negative').max(MAX_INT32);

/** A stock location's code: upper-case letters, digits and `-`, at most 32 characters. */
export const LocationCode = z.string().regex(/^[A-Z0-9-]{1,32}$/, 'location_code must be 1 to 32 upper-case letters, digits or "-"');

/** The location every stock exists at from the start, and where a call naming none acts. */
export const MAIN_LOCATION = 'MAIN';

/** How many stock locations there may be: a line's allocations, and a product's levels, are at most this many. */
export const MAX_STOCK_LOCATIONS = 50;

/** Units of a line held at one location. */
export const Allocation = z.object({ location_code: LocationCode, quantity: Quantity });
export type Allocation = z.infer<typeof Allocation>;

/**
 * A line as reserved, priced: `unit_price_cents` is the product's price when it was reserved
 * (absent for a product without a price). Consumers of the seed contract read only `product_id`
 * and `quantity`.
 */
export const ReservedLine = OrderLine.extend({
  unit_price_cents: Cents.optional(),
  /** Where the line's units on hand are held; absent from producers older than stock locations. */
  allocations: z.array(Allocation).max(MAX_STOCK_LOCATIONS).optional(),
  /** Units promised beyond what is on hand (0 when none); absent from producers older than backorders. */
  backordered_quantity: z.number().int().nonnegative().max(MAX_INT32).optional(),
});
export type ReservedLine = z.infer<typeof ReservedLine>;

export const StockReserved = z.object({
  event: z.literal('StockReserved'),
  order_id: OrderId,
  items: z.array(ReservedLine).min(1, 'items must not be empty').max(MAX_LINES_PER_ORDER),
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

/**
 * Stock arrived for an order waiting on backordered units: each item is held now, at its location.
 * `event_id` is required: the Order Service applies each fill once by it.
 */
export const BackorderFilled = z.object({
  event: z.literal('BackorderFilled'),
  event_id: z.string().min(1).max(200),
  occurred_at: Meta.occurred_at,
  order_id: OrderId,
  items: z
    .array(z.object({ product_id: ProductId, quantity: Quantity, location_code: LocationCode }))
    .min(1, 'items must not be empty')
    .max(MAX_LINES_PER_ORDER),
});
export type BackorderFilled = z.infer<typeof BackorderFilled>;

/** Everything the Order Service consumes from `inventory`, told apart by `event`. */
export const InventoryAnswer = z.discriminatedUnion('event', [StockReserved, StockRejected, StockReleased, BackorderFilled]);
export type InventoryAnswer = z.infer<typeof InventoryAnswer>;

/** ISO 4217: three capital letters. */
export const Currency = z.string().regex(/^[A-Z]{3}$/, 'currency must be an ISO 4217 code (three capital letters)');
export const PaymentId = z.string().min(1, 'payment_id must not be empty').max(200, 'payment_id must be at most 200 characters');

/** A payment service took the money for an order (consumed by the Order Service). */
export const PaymentSucceeded = z.object({
  event: z.literal('PaymentSucceeded'),
  payment_id: PaymentId,
  order_id: OrderId,
  amount_cents: Cents,
  currency: Currency,
  occurred_at: z.string().optional(),
  event_id: Meta.event_id,
});
export type PaymentSucceeded = z.infer<typeof PaymentSucceeded>;

/** A payment attempt for an order failed; the order may still be paid until its hold expires. */
export const PaymentFailed = z.object({
  event: z.literal('PaymentFailed'),
  payment_id: PaymentId,
  order_id: OrderId,
  reason: z.string().min(1).max(500),
  occurred_at: z.string().optional(),
  event_id: Meta.event_id,
});
export type PaymentFailed = z.infer<typeof PaymentFailed>;

/** Everything the Order Service consumes from `payments`, told apart by `event`. */
export const PaymentEvent = z.discriminatedUnion('event', [PaymentSucceeded, PaymentFailed]);
export type PaymentEvent = z.infer<typeof PaymentEvent>;

/** The order was paid in full; its units stay held until it is fulfilled. */
export const OrderPaid = z.object({
  event: z.literal('OrderPaid'),
  order_id: OrderId,
  payment_id: PaymentId,
  amount_cents: Cents,
  currency: Currency,
  ...Meta,
});
export type OrderPaid = z.infer<typeof OrderPaid>;

/**
 * The Order Service holds money it cannot keep (a payment for an order cancelled, expired or
 * unknown, of the wrong amount or currency, a second payment, a paid order cancelled): the payment
 * service should give `amount_cents` of `payment_id` back, once per `payment_id` (the event is
 * delivered at least once).
 */
export const RefundRequested = z.object({
  event: z.literal('RefundRequested'),
  payment_id: PaymentId,
  order_id: OrderId,
  amount_cents: Cents,
  currency: Currency,
  reason: z.string().min(1),
  ...Meta,
});
export type RefundRequested = z.infer<typeof RefundRequested>;
