import { describe, expect, it } from 'vitest';
import { auditBooks, type AuditedOrder, type AuditedProduct } from './audit.ts';

type Payment = AuditedOrder['payments'][number];
const payment = (paymentId: string, outcome: Payment['outcome'], amountCents: number | null = 1_000, currency: string | null = 'EUR') => ({
  paymentId,
  outcome,
  amountCents: outcome === 'FAILED' ? null : amountCents,
  currency: outcome === 'FAILED' ? null : currency,
});
const order = (id: string, status: AuditedOrder['status'], quantity: number, extra: Partial<AuditedOrder> = {}): AuditedOrder => ({
  id,
  status,
  items: [{ productId: '1', quantity }],
  totalCents: status === 'PENDING' ? null : 1_000,
  currency: status === 'PENDING' ? null : 'EUR',
  paidAt: null,
  payments: [],
  ...extra,
});
const PAID_AT = '2026-11-30T12:00:00.000Z';
/** Product 1 received 100 units at MAIN; reserved and sold as given, the rest available. */
const product = (reserved: number, sold: number): AuditedProduct => ({
  id: '1',
  availableStock: 100 - reserved - sold,
  reservedStock: reserved,
  soldStock: sold,
  backorderLimit: 0,
  backorderedStock: 0,
  stockLevels: [{ location: { code: 'MAIN' }, available: 100 - reserved - sold, reserved, sold }],
  movements: { totalCount: 1, nodes: [{ availableChange: 100, locationCode: 'MAIN' }] },
});
/**
 * The same books with product 1's 100 units received 60 at MAIN and 40 at EAST, 10 of them moved
 * from EAST to MAIN, and the 4 held units split over both; one more unit held is backordered.
 */
const atTwoLocations = (): AuditedProduct => ({
  ...product(4, 5),
  backorderLimit: 2,
  backorderedStock: 1,
  stockLevels: [
    { location: { code: 'MAIN' }, available: 62, reserved: 3, sold: 5 },
    { location: { code: 'EAST' }, available: 29, reserved: 1, sold: 0 },
  ],
  movements: {
    totalCount: 4,
    nodes: [
      { availableChange: 60, locationCode: 'MAIN' },
      { availableChange: 40, locationCode: 'EAST' },
      { availableChange: -10, locationCode: 'EAST' },
      { availableChange: 10, locationCode: 'MAIN' },
    ],
  },
});
const backorderedBooks = () => [...books(), order('ORD-backordered', 'CONFIRMED', 1)];

/** A shop's books after payments, every order as the lifecycle leaves it. */
const books = (): AuditedOrder[] => [
  order('ORD-confirmed', 'CONFIRMED', 1, { payments: [payment('p1', 'FAILED')] }),
  order('ORD-paid', 'PAID', 2, { paidAt: PAID_AT, payments: [payment('p2', 'FAILED'), payment('p3', 'PAID')] }),
  order('ORD-paid-twice', 'PAID', 1, { paidAt: PAID_AT, payments: [payment('p4', 'PAID'), payment('p5', 'REFUND_REQUESTED')] }),
  order('ORD-shipped', 'FULFILLED', 4, { paidAt: PAID_AT, payments: [payment('p6', 'PAID')] }),
  order('ORD-shipped-payments-off', 'FULFILLED', 1),
  order('ORD-expired-paid-late', 'CANCELLED', 3, { payments: [payment('p7', 'REFUND_REQUESTED')] }),
  order('ORD-cancelled-after-paying', 'CANCELLED', 2, { paidAt: PAID_AT, payments: [payment('p8', 'REFUND_REQUESTED')] }),
];
/** What inventory shows for those books: CONFIRMED and PAID hold 1 + 2 + 1, FULFILLED sold 4 + 1. */
const balanced = () => [product(4, 5)];

describe('audit of stock and money', () => {
  it('passes books where each order holds, sells and keeps what its status says', () => {
    const report = auditBooks(books(), balanced());
    expect(report.problems).toEqual([]);
    expect(report.orders).toEqual({ PENDING: 0, CONFIRMED: 1, PAID: 2, CANCELLED: 2, FULFILLED: 2 });
    expect(report.payments).toEqual({ PAID: 3, FAILED: 2, REFUND_REQUESTED: 3 });
  });

  it('counts the units of PAID orders as held: reserved must cover them, not only those of CONFIRMED ones', () => {
    expect(auditBooks(books(), [product(1, 5)]).problems).toEqual(['product 1: reserved 1, but its CONFIRMED and PAID orders hold 4']);
  });

  it('finds a PAID order whose payments do not add up to its total, or are in another currency', () => {
    const short = books().map((o) => (o.id === 'ORD-paid' ? { ...o, payments: [payment('p3', 'PAID', 999)] } : o));
    expect(auditBooks(short, balanced()).problems).toEqual([
      '1 paid orders whose PAID payments do not add up to exactly their total (e.g. ORD-paid (PAID: 999 paid of 1000 EUR))',
    ]);
    const dollars = books().map((o) => (o.id === 'ORD-paid' ? { ...o, payments: [payment('p3', 'PAID', 1_000, 'USD')] } : o));
    expect(auditBooks(dollars, balanced()).problems).toHaveLength(1);
  });

  it('finds a FULFILLED order that was paid but keeps no payment; one fulfilled with payments off needs none', () => {
    const unpaid = books().map((o) => (o.id === 'ORD-shipped' ? { ...o, payments: [payment('p6', 'REFUND_REQUESTED')] } : o));
    expect(auditBooks(unpaid, balanced()).problems).toEqual([
      '1 paid orders whose PAID payments do not add up to exactly their total (e.g. ORD-shipped (FULFILLED: 0 paid of 1000 EUR))',
    ]);
  });

  it('finds money kept by an order that did not go through: a CANCELLED order whose payment was not asked back', () => {
    const kept = books().map((o) => (o.id === 'ORD-cancelled-after-paying' ? { ...o, payments: [payment('p8', 'PAID')] } : o));
    expect(auditBooks(kept, balanced()).problems).toEqual([
      '1 orders that did not go through yet keep a PAID payment (its money is neither earned nor asked back) (e.g. ORD-cancelled-after-paying (CANCELLED: p8))',
    ]);
    const confirmed = books().map((o) => (o.id === 'ORD-confirmed' ? { ...o, payments: [payment('p1', 'PAID')] } : o));
    expect(auditBooks(confirmed, balanced()).problems).toHaveLength(1);
  });

  it('finds a refund request without an amount to give back', () => {
    const blank = books().map((o) =>
      o.id === 'ORD-expired-paid-late' ? { ...o, payments: [{ ...payment('p7', 'REFUND_REQUESTED'), amountCents: null }] } : o,
    );
    expect(auditBooks(blank, balanced()).problems).toEqual([
      '1 refund requests without an amount to give back (e.g. p7 of ORD-expired-paid-late)',
    ]);
  });

  it('finds a PAID order without paidAt', () => {
    const noDate = books().map((o) => (o.id === 'ORD-paid' ? { ...o, paidAt: null } : o));
    expect(auditBooks(noDate, balanced()).problems).toEqual(['1 PAID orders without paidAt (e.g. ORD-paid)']);
  });

  it('counts backordered units as held, within the limit, and checks each location against what it received', () => {
    expect(auditBooks(backorderedBooks(), [atTwoLocations()]).problems).toEqual([]);
  });

  it('finds backorders above the limit', () => {
    const over = { ...atTwoLocations(), backorderLimit: 0 };
    expect(auditBooks(backorderedBooks(), [over]).problems).toEqual(['product 1: 1 backordered, above its limit of 0']);
  });

  it("finds a location that holds another's units, though the product's sums balance", () => {
    const p = atTwoLocations();
    // A release returned a unit reserved at EAST to MAIN: MAIN has one too many, EAST one too few.
    const wrong = {
      ...p,
      stockLevels: [
        { location: { code: 'MAIN' }, available: 63, reserved: 3, sold: 5 },
        { location: { code: 'EAST' }, available: 28, reserved: 1, sold: 0 },
      ],
    };
    expect(auditBooks(backorderedBooks(), [wrong]).problems).toEqual([
      'product 1 at MAIN: available + reserved + sold = 71, but 70 were received there',
      'product 1 at EAST: available + reserved + sold = 29, but 30 were received there',
    ]);
    const negative = {
      ...p,
      stockLevels: [
        { location: { code: 'MAIN' }, available: 62, reserved: 3, sold: 5 },
        // Oversold: one unit more reserved there than it had, balanced by a negative available.
        { location: { code: 'EAST' }, available: -1, reserved: 31, sold: 0 },
      ],
    };
    expect(auditBooks(backorderedBooks(), [negative]).problems).toEqual([
      'product 1 at EAST: a negative counter',
      'product 1: its locations hold 61/34/5 available/reserved/sold, but the product 91/4/5',
    ]);
  });

  it("finds a location's counters that do not add up to the product's: a level left behind by a release", () => {
    const p = atTwoLocations();
    const stale = {
      ...p,
      stockLevels: [
        { location: { code: 'MAIN' }, available: 62, reserved: 3, sold: 5 },
        // Still holding a unit the product has given back.
        { location: { code: 'EAST' }, available: 28, reserved: 2, sold: 0 },
      ],
    };
    expect(auditBooks(backorderedBooks(), [stale]).problems).toEqual([
      'product 1: its locations hold 90/5/5 available/reserved/sold, but the product 91/4/5',
    ]);
  });
});
