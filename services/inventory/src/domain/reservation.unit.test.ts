import { describe, expect, it } from 'vitest';
import { decideOrders, fillBackorders, rejectionReason, sumLines, type AllocatedLine, type ProductStock } from './reservation.ts';

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

/** The locations of these tests: EAST and WEST are preferred to MAIN, and EAST to WEST by its code. */
const LOCATIONS = { MAIN: { locationId: 1, priority: 100 }, EAST: { locationId: 2, priority: 50 }, WEST: { locationId: 3, priority: 50 } };
type Code = keyof typeof LOCATIONS;

/** Given: a product's units on hand per location, and how many more may be backordered. */
const given = (units: Partial<Record<Code, number>>, backorderRoom = 0): ProductStock => ({
  levels: Object.entries(units).map(([code, available]) => ({ ...LOCATIONS[code as Code], code, available })),
  backorderRoom,
});
const only = (units: number) => given({ MAIN: units });
const held = (stock: ProductStock) => Object.fromEntries(stock.levels.map((l) => [l.code, l.available]));
const where = (line: AllocatedLine | undefined) => [line?.allocations.map((a) => `${a.code}:${a.quantity}`), line?.backordered];
const order = (orderId: string, ...lines: [number, number][]) => ({
  orderId,
  items: lines.map(([product_id, quantity]) => ({ product_id, quantity })),
});

describe('decideOrders', () => {
  it('reserves an order whose every line is in stock and takes the units off', () => {
    const stock = new Map([
      [1, only(5)],
      [2, only(1)],
    ]);
    const [decision] = decideOrders([order('A', [1, 2], [2, 1])], stock);
    expect(decision?.outcome).toBe('RESERVED');
    expect([held(stock.get(1) as ProductStock), held(stock.get(2) as ProductStock)]).toEqual([{ MAIN: 3 }, { MAIN: 0 }]);
  });

  it('rejects the whole order when one line is short, leaving every line untouched', () => {
    const stock = new Map([
      [1, only(5)],
      [2, only(1)],
    ]);
    const [decision] = decideOrders([order('A', [1, 2], [2, 2])], stock);
    expect(decision).toEqual({
      orderId: 'A',
      outcome: 'REJECTED',
      reason: 'Insufficient stock: product 2 (requested 2, available 1)',
      lines: [{ product_id: 2, requested: 2, available: 1, problem: 'INSUFFICIENT_STOCK' }],
    });
    expect(held(stock.get(1) as ProductStock)).toEqual({ MAIN: 5 });
  });

  it('decides a batch in arrival order, so a later order sees what earlier ones took', () => {
    const stock = new Map([[1, only(3)]]);
    const decisions = decideOrders([order('A', [1, 2]), order('B', [1, 2]), order('C', [1, 1])], stock);
    expect(decisions.map((d) => d.outcome)).toEqual(['RESERVED', 'REJECTED', 'RESERVED']);
    expect(held(stock.get(1) as ProductStock)).toEqual({ MAIN: 0 });
  });

  it('names unknown products instead of calling them short', () => {
    const [decision] = decideOrders([order('A', [42, 1])], new Map());
    expect(decision?.outcome === 'REJECTED' && decision.reason).toBe('Unknown product: 42');
  });

  it('counts duplicate lines together against the stock', () => {
    const [decision] = decideOrders([order('A', [1, 1], [1, 1])], new Map([[1, only(1)]]));
    expect(decision?.outcome).toBe('REJECTED');
  });
});

describe('allocation across locations', () => {
  it('prefers one location that can supply every line, even when a more preferred one has some of them', () => {
    // Given EAST (preferred) has only product 1, and MAIN has both.
    const stock = new Map([
      [1, given({ EAST: 5, MAIN: 5 })],
      [2, given({ MAIN: 5 })],
    ]);
    // When an order of both is decided
    const [decision] = decideOrders([order('A', [1, 2], [2, 1])], stock);
    // Then both lines come from MAIN alone.
    expect(decision?.outcome === 'RESERVED' && decision.perProduct.map(where)).toEqual([
      [['MAIN:2'], 0],
      [['MAIN:1'], 0],
    ]);
    expect(held(stock.get(1) as ProductStock)).toEqual({ EAST: 5, MAIN: 3 });
  });

  it('among locations that can supply the whole order, takes the lowest priority number, then the lowest code', () => {
    const stock = new Map([[1, given({ MAIN: 9, WEST: 9, EAST: 9 })]]);
    const decisions = decideOrders([order('A', [1, 9]), order('B', [1, 9]), order('C', [1, 9])], stock);
    expect(decisions.map((d) => d.outcome === 'RESERVED' && d.perProduct.map(where))).toEqual([
      [[['EAST:9'], 0]],
      [[['WEST:9'], 0]],
      [[['MAIN:9'], 0]],
    ]);
  });

  it('splits a line over the locations in order of preference when no location has the whole order', () => {
    // Given 2 at EAST, 2 at WEST and 10 at MAIN of product 1, and product 2 only at EAST.
    const stock = new Map([
      [1, given({ MAIN: 10, WEST: 2, EAST: 2 })],
      [2, given({ EAST: 1 })],
    ]);
    // When an order wants 5 of product 1 and 1 of product 2 (MAIN has no product 2)
    const [decision] = decideOrders([order('A', [1, 5], [2, 1])], stock);
    // Then product 1 takes EAST's, WEST's, then MAIN's, and product 2 EAST's.
    expect(decision?.outcome === 'RESERVED' && decision.perProduct.map(where)).toEqual([
      [['EAST:2', 'WEST:2', 'MAIN:1'], 0],
      [['EAST:1'], 0],
    ]);
    expect(held(stock.get(1) as ProductStock)).toEqual({ EAST: 0, WEST: 0, MAIN: 9 });
  });

  it("gives an order's duplicate lines the product's allocations in turn, keeping the lines as received", () => {
    const stock = new Map([[1, given({ EAST: 2, MAIN: 2 }, 1)]]);
    const [decision] = decideOrders([order('A', [1, 3], [1, 2])], stock);
    expect(decision?.outcome === 'RESERVED' && decision.items.map(where)).toEqual([
      [['EAST:2', 'MAIN:1'], 0],
      [['MAIN:1'], 1],
    ]);
  });
});

describe('backorders', () => {
  it('reserves an order short of stock with its shortfall backordered while it fits the backorder room', () => {
    // Given 2 on hand and room for 3 more
    const stock = new Map([[1, given({ MAIN: 1, EAST: 1 }, 3)]]);
    // When orders of 4 and then 2 come
    const [first, second] = decideOrders([order('A', [1, 4]), order('B', [1, 2])], stock);
    // Then the first holds both units and backorders 2, and the second finds room for 1 only: rejected.
    expect(first?.outcome === 'RESERVED' && first.perProduct.map(where)).toEqual([[['EAST:1', 'MAIN:1'], 2]]);
    expect(second).toEqual({
      orderId: 'B',
      outcome: 'REJECTED',
      reason: 'Insufficient stock: product 1 (requested 2, available 0)',
      lines: [{ product_id: 1, requested: 2, available: 0, problem: 'INSUFFICIENT_STOCK' }],
    });
    expect(stock.get(1)?.backorderRoom).toBe(1);
  });

  it('rejects an order whose shortfall is beyond the backorder room, taking nothing', () => {
    const stock = new Map([[1, given({ MAIN: 1 }, 2)]]);
    const [decision] = decideOrders([order('A', [1, 4])], stock);
    expect(decision?.outcome).toBe('REJECTED');
    expect([held(stock.get(1) as ProductStock), stock.get(1)?.backorderRoom]).toEqual([{ MAIN: 1 }, 2]);
  });
});

describe('fillBackorders', () => {
  it('fills the oldest waiting order first, each as far as the arrived units go', () => {
    const waiting = [
      { orderId: 'OLD', backordered: 2 },
      { orderId: 'MID', backordered: 3 },
      { orderId: 'NEW', backordered: 1 },
    ];
    expect(fillBackorders(waiting, 4)).toEqual([
      { orderId: 'OLD', quantity: 2 },
      { orderId: 'MID', quantity: 2 },
    ]);
    expect(fillBackorders(waiting, 10)).toEqual([
      { orderId: 'OLD', quantity: 2 },
      { orderId: 'MID', quantity: 3 },
      { orderId: 'NEW', quantity: 1 },
    ]);
    expect(fillBackorders(waiting, 0)).toEqual([]);
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
