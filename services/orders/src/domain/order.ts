import { ORDER_ID_MAX_LENGTH, productIdFrom, type OrderLine, type ReservedLine } from '@stockflow/contracts';
import { AppError, ValidationError } from '@stockflow/platform';

export const ORDER_STATUSES = ['PENDING', 'CONFIRMED', 'PAID', 'CANCELLED', 'FULFILLED'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export interface Order {
  seq: number;
  id: string;
  customerId: string;
  status: OrderStatus;
  reason: string | null;
  items: OrderLine[];
  /** The lines as reserved, with their unit prices; null until the order is confirmed. */
  pricedItems: ReservedLine[] | null;
  /** What the customer owes; null until confirmed, and when a line had no price. */
  totalCents: number | null;
  currency: string | null;
  /** When an unpaid CONFIRMED order is cancelled; null when payments are off. */
  paymentDueAt: Date | null;
  paidAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export const ORDER_LIMITS = {
  maxLines: 100,
  maxQuantity: 10_000,
  customerIdLength: 100,
  idempotencyKeyLength: 200,
  reasonLength: 500,
} as const;

/**
 * The lifecycle. Anything not listed here is refused. One more rule is the order's own: a
 * CONFIRMED order that was given a payment hold (`paymentDueAt`) must be paid before it is
 * fulfilled while payments are on; one confirmed without a hold (payments off, or before
 * payments existed) may be fulfilled directly.
 */
const NEXT: Record<OrderStatus, readonly OrderStatus[]> = {
  PENDING: ['CONFIRMED', 'CANCELLED'],
  CONFIRMED: ['PAID', 'CANCELLED', 'FULFILLED'],
  PAID: ['FULFILLED', 'CANCELLED'],
  CANCELLED: [],
  FULFILLED: [],
};

/** The statuses from which an order may move to `to`. */
export const allowedFrom = (to: OrderStatus): OrderStatus[] =>
  (Object.keys(NEXT) as OrderStatus[]).filter((from) => NEXT[from].includes(to));

/** A status the order never leaves (CANCELLED, FULFILLED). */
export const isFinal = (status: OrderStatus): boolean => NEXT[status].length === 0;

/** Are units of this order promised and not on hand yet (backordered)? Then it cannot ship. */
export const awaitingStock = (order: Pick<Order, 'pricedItems'>): boolean =>
  (order.pricedItems ?? []).some((line) => (line.backordered_quantity ?? 0) > 0);

/** Must this order be paid before it can be fulfilled? */
export const awaitsPayment = (order: Pick<Order, 'status' | 'paymentDueAt'>, paymentsOn: boolean): boolean =>
  paymentsOn && order.status === 'CONFIRMED' && order.paymentDueAt !== null;

const VERB: Partial<Record<OrderStatus, string>> = { CANCELLED: 'cancel', FULFILLED: 'fulfil', CONFIRMED: 'confirm' };

/**
 * Why an order refused to move to `to`: PAYMENT_REQUIRED for a CONFIRMED order that must be paid
 * before it is fulfilled (its status allows it; the payment is what is missing), otherwise
 * INVALID_TRANSITION with the statuses it could have moved from.
 */
export function transitionError(order: Pick<Order, 'id' | 'status' | 'paymentDueAt'>, to: OrderStatus, paymentsOn = false): AppError {
  if (to === 'FULFILLED' && awaitsPayment(order, paymentsOn)) {
    const due = (order.paymentDueAt as Date).toISOString();
    return new AppError('PAYMENT_REQUIRED', `cannot fulfil order ${order.id}: it is not paid yet (payment due by ${due})`, {
      details: { status: order.status, paymentDueAt: due },
    });
  }
  return new AppError('INVALID_TRANSITION', `cannot ${VERB[to] ?? to} order ${order.id}: it is ${order.status}`, {
    details: { status: order.status, allowedFrom: allowedFrom(to) },
  });
}

export interface NewOrderInput {
  customerId: string;
  items: { productId: string; quantity: number }[];
  idempotencyKey?: string | null | undefined;
}

export interface NewOrder {
  customerId: string;
  items: OrderLine[];
  idempotencyKey: string | null;
}

export function validCustomerId(raw: string, field = 'customerId'): string {
  const id = raw.trim();
  if (id.length === 0 || id.length > ORDER_LIMITS.customerIdLength) {
    throw new ValidationError(`${field} must be 1 to ${ORDER_LIMITS.customerIdLength} characters`, { field });
  }
  return id;
}

export function validOrderId(raw: string, field = 'id'): string {
  const id = raw.trim();
  if (id.length === 0 || id.length > ORDER_ID_MAX_LENGTH) {
    throw new ValidationError(`${field} must be an order id (1 to ${ORDER_ID_MAX_LENGTH} characters)`, { field });
  }
  return id;
}

/** Validates a createOrder request and puts it in the contract's shape. Lines are kept as sent. */
export function validNewOrder(input: NewOrderInput): NewOrder {
  const customerId = validCustomerId(input.customerId);
  if (input.items.length === 0) throw new ValidationError('items must not be empty', { field: 'items' });
  if (input.items.length > ORDER_LIMITS.maxLines) {
    throw new ValidationError(`an order may have at most ${ORDER_LIMITS.maxLines} lines`, { field: 'items' });
  }
  const items = input.items.map((line, i) => {
    const productId = productIdFrom(line.productId);
    if (productId === undefined) {
      throw new ValidationError(`items[${i}].productId must be a product id (a positive integer)`, { field: `items.${i}.productId` });
    }
    if (!Number.isInteger(line.quantity) || line.quantity <= 0 || line.quantity > ORDER_LIMITS.maxQuantity) {
      throw new ValidationError(`items[${i}].quantity must be a whole number from 1 to ${ORDER_LIMITS.maxQuantity}`, {
        field: `items.${i}.quantity`,
      });
    }
    return { product_id: productId, quantity: line.quantity };
  });
  const key = input.idempotencyKey?.trim() || null;
  if (key && key.length > ORDER_LIMITS.idempotencyKeyLength) {
    throw new ValidationError(`idempotencyKey must be at most ${ORDER_LIMITS.idempotencyKeyLength} characters`, {
      field: 'idempotencyKey',
    });
  }
  return { customerId, items, idempotencyKey: key };
}

export function validReason(raw: string | null | undefined): string | null {
  const reason = raw?.trim() || null;
  if (reason && reason.length > ORDER_LIMITS.reasonLength) {
    throw new ValidationError(`reason must be at most ${ORDER_LIMITS.reasonLength} characters`, { field: 'reason' });
  }
  return reason;
}

export const sameLines = (a: readonly OrderLine[], b: readonly OrderLine[]) =>
  a.length === b.length && a.every((line, i) => line.product_id === b[i]?.product_id && line.quantity === b[i]?.quantity);
