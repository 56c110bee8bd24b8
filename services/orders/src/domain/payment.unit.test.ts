import { describe, expect, it } from 'vitest';
import type { PaymentEvent } from '@stockflow/contracts';
import { judgePayment, orderTotal, type PayableOrder } from './payment.ts';

const confirmed: PayableOrder = { status: 'CONFIRMED', totalCents: 2_000, currency: 'EUR', holdExpired: false };
const pays = (amount = 2_000, currency = 'EUR'): PaymentEvent => ({
  event: 'PaymentSucceeded',
  payment_id: 'p',
  order_id: 'o',
  amount_cents: amount,
  currency,
});

describe('judgePayment', () => {
  it('keeps exactly the total of a confirmed order whose hold is not over', () => {
    expect(judgePayment(confirmed, pays())).toEqual({ outcome: 'PAID', reason: null, expireOrder: false });
  });

  it('asks back any other money, and cancels an order whose hold is over', () => {
    const refunded = (order: PayableOrder | undefined, payment = pays()) => judgePayment(order, payment);
    expect(refunded(undefined).reason).toBe('no such order');
    expect(refunded({ ...confirmed, status: 'PENDING' }).outcome).toBe('REFUND_REQUESTED');
    expect(refunded({ ...confirmed, status: 'PAID' }).reason).toBe('the order is already paid');
    expect(refunded({ ...confirmed, status: 'FULFILLED' }).reason).toBe('the order is already fulfilled');
    expect(refunded({ ...confirmed, status: 'CANCELLED' }).reason).toBe('the order is cancelled');
    expect(refunded(confirmed, pays(1_999)).reason).toBe("1999 EUR does not match the order's total of 2000 EUR");
    expect(refunded(confirmed, pays(2_000, 'USD')).outcome).toBe('REFUND_REQUESTED');
    expect(refunded({ ...confirmed, totalCents: null }).outcome).toBe('REFUND_REQUESTED');
    expect(refunded({ ...confirmed, holdExpired: true })).toEqual({
      outcome: 'REFUND_REQUESTED',
      reason: 'the payment hold expired before the payment arrived',
      expireOrder: true,
    });
  });

  it('records a failed attempt and changes nothing', () => {
    const failed = judgePayment(confirmed, { event: 'PaymentFailed', payment_id: 'p', order_id: 'o', reason: 'card declined' });
    expect(failed).toEqual({ outcome: 'FAILED', reason: 'card declined', expireOrder: false });
  });
});

describe('orderTotal', () => {
  it('sums the priced lines, and has none when a line has no price or the sum does not fit a payment', () => {
    expect(
      orderTotal([
        { product_id: 1, quantity: 2, unit_price_cents: 150 },
        { product_id: 2, quantity: 1, unit_price_cents: 99 },
      ]),
    ).toBe(399);
    expect(orderTotal([{ product_id: 1, quantity: 2 }])).toBeNull();
    expect(orderTotal([{ product_id: 1, quantity: 10_000, unit_price_cents: 1_000_000 }])).toBeNull();
  });
});
