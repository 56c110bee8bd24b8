import { describe, expect, it } from 'vitest';
import { decideOrders, rejectionReason, sumLines } from './reservation.ts';

describe('sumLines', () => {
  it('merges lines naming the same product and sorts by product id', () => {
    expect(
      sumLines([
        { product_id: 7, quantity: 1 },
        { product_id: 2, quantity: 3 },
        { product_id: 7, quantity: 4 },
      ]),
    ).toEqual([
      { product_id: 2, quantity: 3 },
      { product_id: 7, quantity: 5 },
    ]);
  });
});

describe('decideOrders', () => {
  it('reserves an order whose every line is in stock and takes the units off', () => {
    const stock = new Map([
      [1, 5],
      [2, 1],
    ]);
    const [decision] = decideOrders(
      [
        {
          orderId: 'A',
          items: [
            { product_id: 1, quantity: 2 },
            { product_id: 2, quantity: 1 },
          ],
        },
      ],
      stock,
    );
    expect(decision?.outcome).toBe('RESERVED');
    expect([...stock]).toEqual([
      [1, 3],
      [2, 0],
    ]);
  });

  it('rejects the whole order when one line is short, leaving every line untouched', () => {
    const stock = new Map([
      [1, 5],
      [2, 1],
    ]);
    const [decision] = decideOrders(
      [
        {
          orderId: 'A',
          items: [
            { product_id: 1, quantity: 2 },
            { product_id: 2, quantity: 2 },
          ],
        },
      ],
      stock,
    );
    expect(decision).toEqual({
      orderId: 'A',
      outcome: 'REJECTED',
      reason: 'Insufficient stock: product 2 (requested 2, available 1)',
      lines: [{ product_id: 2, requested: 2, available: 1, problem: 'INSUFFICIENT_STOCK' }],
    });
    expect(stock.get(1)).toBe(5);
  });

  it('decides a batch in arrival order, so a later order sees what earlier ones took', () => {
    const stock = new Map([[1, 3]]);
    const decisions = decideOrders(
      [
        { orderId: 'A', items: [{ product_id: 1, quantity: 2 }] },
        { orderId: 'B', items: [{ product_id: 1, quantity: 2 }] },
        { orderId: 'C', items: [{ product_id: 1, quantity: 1 }] },
      ],
      stock,
    );
    expect(decisions.map((d) => d.outcome)).toEqual(['RESERVED', 'REJECTED', 'RESERVED']);
    expect(stock.get(1)).toBe(0);
  });

  it('names unknown products instead of calling them short', () => {
    const [decision] = decideOrders([{ orderId: 'A', items: [{ product_id: 42, quantity: 1 }] }], new Map());
    expect(decision?.outcome === 'REJECTED' && decision.reason).toBe('Unknown product: 42');
  });

  it('counts duplicate lines together against the stock', () => {
    const [decision] = decideOrders(
      [
        {
          orderId: 'A',
          items: [
            { product_id: 1, quantity: 1 },
            { product_id: 1, quantity: 1 },
          ],
        },
      ],
      new Map([[1, 1]]),
    );
    expect(decision?.outcome).toBe('REJECTED');
  });
});

describe('rejectionReason', () => {
  it('lists short lines first, then unknown products', () => {
    expect(
      rejectionReason([
        { product_id: 9, requested: 1, available: null, problem: 'UNKNOWN_PRODUCT' },
        { product_id: 8, requested: 1, available: null, problem: 'UNKNOWN_PRODUCT' },
        { product_id: 1, requested: 3, available: 2, problem: 'INSUFFICIENT_STOCK' },
      ]),
    ).toBe('Insufficient stock: product 1 (requested 3, available 2); Unknown products: 9, 8');
  });
});
