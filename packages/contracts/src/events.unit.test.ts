import { describe, expect, it } from 'vitest';
import { OrderCreated, StockRejected, StockReserved } from './events.ts';

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
