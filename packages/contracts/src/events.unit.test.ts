import { describe, expect, it } from 'vitest';
import { OrderCreated, PaymentEvent, productIdFrom, RefundRequested, StockRejected, StockReserved } from './events.ts';

describe('event contract', () => {
  it('accepts the documented examples carrying exactly their fields', () => {
    expect(OrderCreated.parse({ event: 'OrderCreated', order_id: 'ORD-12345', items: [{ product_id: 1, quantity: 2 }] })).toEqual({
      event: 'OrderCreated',
      order_id: 'ORD-12345',
      items: [{ product_id: 1, quantity: 2 }],
    });
    expect(
      StockReserved.safeParse({ event: 'StockReserved', order_id: 'ORD-12345', items: [{ product_id: 1, quantity: 2 }] }).success,
    ).toBe(true);
    expect(StockRejected.safeParse({ event: 'StockRejected', order_id: 'ORD-12345', reason: 'Insufficient stock' }).success).toBe(true);
  });

  it('drops unknown extra fields instead of refusing the message', () => {
    const parsed = OrderCreated.parse({
      event: 'OrderCreated',
      order_id: 'A',
      items: [{ product_id: 1, quantity: 1, note: 'x' }],
      source: 'pos',
    });
    expect(parsed).toEqual({ event: 'OrderCreated', order_id: 'A', items: [{ product_id: 1, quantity: 1 }] });
  });

  it.each([
    ['a zero quantity', { event: 'OrderCreated', order_id: 'A', items: [{ product_id: 1, quantity: 0 }] }],
    ['a fractional quantity', { event: 'OrderCreated', order_id: 'A', items: [{ product_id: 1, quantity: 1.5 }] }],
    ['a string product id', { event: 'OrderCreated', order_id: 'A', items: [{ product_id: '1', quantity: 1 }] }],
    ['an empty order id', { event: 'OrderCreated', order_id: '', items: [{ product_id: 1, quantity: 1 }] }],
    ['an order id over 100 characters', { event: 'OrderCreated', order_id: 'x'.repeat(101), items: [{ product_id: 1, quantity: 1 }] }],
    ['no items', { event: 'OrderCreated', order_id: 'A', items: [] }],
    ['another event name', { event: 'OrderUpdated', order_id: 'A', items: [{ product_id: 1, quantity: 1 }] }],
    ['a quantity beyond 32 bits', { event: 'OrderCreated', order_id: 'A', items: [{ product_id: 1, quantity: 2 ** 31 }] }],
  ])('refuses %s', (_label, body) => {
    expect(OrderCreated.safeParse(body).success).toBe(false);
  });
});

describe('payment contract', () => {
  it('accepts the documented payment events and refuses a bad amount, currency or id', () => {
    const succeeded = {
      event: 'PaymentSucceeded',
      payment_id: 'pay_8f2a',
      order_id: 'ORD-12345',
      amount_cents: 39_800,
      currency: 'EUR',
      occurred_at: '2026-11-27T09:34:10.000Z',
    };
    expect(PaymentEvent.parse(succeeded)).toEqual(succeeded);
    expect(PaymentEvent.parse({ event: 'PaymentFailed', payment_id: 'p', order_id: 'O', reason: 'card declined' }).event).toBe(
      'PaymentFailed',
    );
    for (const bad of [{ amount_cents: -1 }, { amount_cents: 1.5 }, { currency: 'eur' }, { currency: 'EURO' }, { payment_id: '' }]) {
      expect(PaymentEvent.safeParse({ ...succeeded, ...bad }).success, JSON.stringify(bad)).toBe(false);
    }
    expect(RefundRequested.safeParse({ ...succeeded, event: 'RefundRequested', reason: 'the order is already paid' }).success).toBe(true);
  });

  it('keeps a StockReserved line price optional, so the seed contract still parses', () => {
    const line = { product_id: 1, quantity: 2 };
    expect(StockReserved.parse({ event: 'StockReserved', order_id: 'O', items: [line] }).items).toEqual([line]);
    expect(
      StockReserved.parse({ event: 'StockReserved', order_id: 'O', items: [{ ...line, unit_price_cents: 19_900 }] }).items[0]
        ?.unit_price_cents,
    ).toBe(19_900);
  });
});

describe('productIdFrom: a product id as a client writes it', () => {
  it.each([
    ['7', 7],
    [' 42 ', 42],
    [2_147_483_647, 2_147_483_647],
    ['0012', 12],
  ])('takes %j as %d', (raw, id) => {
    expect(productIdFrom(raw)).toBe(id);
  });

  it.each(['0', '-1', '1.5', '1e3', '', 'abc', '2147483648', '12345678901', 0, 1.5])('refuses %j', (raw) => {
    expect(productIdFrom(raw)).toBeUndefined();
  });
});
