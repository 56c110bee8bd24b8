import { describe, expect, it } from 'vitest';
import { BackorderFilled, OrderCreated, PaymentEvent, productIdFrom, RefundRequested, StockRejected, StockReserved } from './events.ts';

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

/**
 * The bodies as they travel, read the way the seed's consumers read them (a JSON decoder, then the
 * seed's fields by name), and as Stockflow's own consumers parse them.
 */
describe('wire format of stock locations and backorders', () => {
  it('adds allocations and backordered_quantity to a StockReserved line without touching the seed fields', () => {
    const raw =
      '{"event": "StockReserved", "order_id": "ORD-1", "items": [{"product_id": 1, "quantity": 3, "unit_price_cents": 500,' +
      ' "allocations": [{"location_code": "MAIN", "quantity": 1}, {"location_code": "EAST-2", "quantity": 1}], "backordered_quantity": 1}],' +
      ' "event_id": "e-1", "occurred_at": "2026-11-27T09:30:00.012Z"}';
    const seedView = JSON.parse(raw) as { event: string; order_id: string; items: { product_id: number; quantity: number }[] };
    expect([seedView.event, seedView.order_id, seedView.items.map((i) => [i.product_id, i.quantity])]).toEqual([
      'StockReserved',
      'ORD-1',
      [[1, 3]],
    ]);
    expect(StockReserved.parse(JSON.parse(raw)).items[0]).toEqual({
      product_id: 1,
      quantity: 3,
      unit_price_cents: 500,
      allocations: [
        { location_code: 'MAIN', quantity: 1 },
        { location_code: 'EAST-2', quantity: 1 },
      ],
      backordered_quantity: 1,
    });
    // A producer that knows nothing of locations (the seed's) is still understood.
    expect(
      StockReserved.parse(JSON.parse('{"event": "StockReserved", "order_id": "ORD-1", "items": [{"product_id": 1, "quantity": 3}]}')).items,
    ).toEqual([{ product_id: 1, quantity: 3 }]);
  });

  it('reads BackorderFilled as documented and refuses one without event_id, items or a valid location code', () => {
    const raw =
      '{"event": "BackorderFilled", "event_id": "3c4d", "occurred_at": "2026-11-29T08:00:00.000Z", "order_id": "ORD-1",' +
      ' "items": [{"product_id": 1, "quantity": 2, "location_code": "MAIN"}]}';
    expect(BackorderFilled.parse(JSON.parse(raw))).toEqual({
      event: 'BackorderFilled',
      event_id: '3c4d',
      occurred_at: '2026-11-29T08:00:00.000Z',
      order_id: 'ORD-1',
      items: [{ product_id: 1, quantity: 2, location_code: 'MAIN' }],
    });
    const body = JSON.parse(raw) as Record<string, unknown>;
    for (const bad of [
      { event_id: undefined },
      { items: [] },
      { items: [{ product_id: 1, quantity: 2, location_code: 'main' }] },
      { items: [{ product_id: 1, quantity: 0, location_code: 'MAIN' }] },
    ]) {
      expect(BackorderFilled.safeParse({ ...body, ...bad }).success, JSON.stringify(bad)).toBe(false);
    }
  });
});
