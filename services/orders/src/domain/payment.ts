import { MAX_INT32, type PaymentEvent, type ReservedLine } from '@stockflow/contracts';
import type { OrderStatus } from './order.ts';

export const PAYMENT_OUTCOMES = ['PAID', 'FAILED', 'REFUND_REQUESTED'] as const;

/** The payment attempts an order lists: a page holds enough for any real order, and its cost stays bounded. */
export const MAX_PAYMENTS_LISTED = 50;
export type PaymentOutcome = (typeof PAYMENT_OUTCOMES)[number];

/** One attempt to pay an order, as recorded. */
export interface Payment {
  paymentId: string;
  orderId: string;
  /** Null for a failed attempt: no money was taken. */
  amountCents: number | null;
  currency: string | null;
  outcome: PaymentOutcome;
  reason: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** What a payment is judged against: the order as it is under its row lock. */
export interface PayableOrder {
  status: OrderStatus;
  totalCents: number | null;
  currency: string | null;
  /** Its payment hold is over (the database's clock): it may no longer be paid. */
  holdExpired: boolean;
}

export interface Verdict {
  outcome: PaymentOutcome;
  reason: string | null;
  /** The order's hold is over and it is still CONFIRMED: cancel it now, in the same transaction. */
  expireOrder: boolean;
}

/**
 * What a payment does to an order. Money is kept only by a CONFIRMED order whose hold is not
 * over, for exactly its total in its currency; any other money taken is asked back. A failed
 * attempt changes nothing and is only recorded.
 */
export function judgePayment(order: PayableOrder | undefined, payment: PaymentEvent): Verdict {
  if (payment.event === 'PaymentFailed') return { outcome: 'FAILED', reason: payment.reason, expireOrder: false };
  const refund = (reason: string, expireOrder = false): Verdict => ({ outcome: 'REFUND_REQUESTED', reason, expireOrder });
  if (!order) return refund('no such order');
  switch (order.status) {
    case 'PENDING':
      return refund('the order is not confirmed yet: its stock is not reserved');
    case 'PAID':
    case 'FULFILLED':
      return refund(`the order is already ${order.status === 'PAID' ? 'paid' : 'fulfilled'}`);
    case 'CANCELLED':
      return refund('the order is cancelled');
    case 'CONFIRMED':
      break;
  }
  if (order.holdExpired) return refund('the payment hold expired before the payment arrived', true);
  if (order.totalCents === null || order.currency === null) {
    return refund('the order has no total: a product had no price when it was reserved');
  }
  if (payment.amount_cents !== order.totalCents || payment.currency !== order.currency) {
    return refund(`${payment.amount_cents} ${payment.currency} does not match the order's total of ${order.totalCents} ${order.currency}`);
  }
  return { outcome: 'PAID', reason: null, expireOrder: false };
}

/** An order's total from its reserved lines; null when a line has no price or it would not fit a payment's amount. */
export function orderTotal(lines: readonly ReservedLine[]): number | null {
  let total = 0;
  for (const line of lines) {
    if (line.unit_price_cents === undefined) return null;
    total += line.unit_price_cents * line.quantity;
  }
  return total <= MAX_INT32 ? total : null;
}
