import { describe, expect, it } from 'vitest';
import type { BackorderFilled, InventoryAnswer, PaymentEvent, ReservedLine } from '@stockflow/contracts';
import {
  answerRepeat,
  decideAnswer,
  decideAnswers,
  decideExpiry,
  decideFills,
  fillLines,
  decidePayments,
  decideTransition,
  type Hold,
  type PaymentSettings,
} from './lifecycle.ts';
import type { Order, OrderStatus } from './order.ts';
import type { PayableOrder } from './payment.ts';

const DUE = '2026-01-01T12:00:00.123Z';
const paymentsOn: PaymentSettings = { holdSeconds: 900, currency: 'EUR' };
const paymentsOff: PaymentSettings = { holdSeconds: 0, currency: 'EUR' };

/** An order as read under its lock, in `status`. */
const given = (status: OrderStatus, more: Partial<Order> = {}): Order => ({
  seq: 1,
  id: 'ORD-1',
  customerId: 'alice',
  status,
  reason: null,
  items: [{ product_id: 1, quantity: 2 }],
  pricedItems: null,
  totalCents: status === 'PENDING' ? null : 2_000,
  currency: status === 'PENDING' ? null : 'EUR',
  paymentDueAt: status === 'PENDING' ? null : new Date(DUE),
  paidAt: status === 'PAID' || status === 'FULFILLED' ? new Date(DUE) : null,
  createdAt: new Date(DUE),
  updatedAt: new Date(DUE),
  ...more,
});

const reserved: InventoryAnswer = {
  event: 'StockReserved',
  order_id: 'ORD-1',
  items: [{ product_id: 1, quantity: 2, unit_price_cents: 1_000 }],
};
const rejected: InventoryAnswer = {
  event: 'StockRejected',
  order_id: 'ORD-1',
  reason: 'Insufficient stock: product 1 (requested 2, available 1)',
  lines: [{ product_id: 1, requested: 2, available: 1, problem: 'INSUFFICIENT_STOCK' }],
};
const released: InventoryAnswer = { event: 'StockReleased', order_id: 'ORD-1', items: [{ product_id: 1, quantity: 2 }] };

describe('an inventory answer', () => {
  it('given a PENDING order, when stock is reserved, then it is CONFIRMED with its total and a hold, and OrderConfirmed is announced', () => {
    expect(decideAnswer(given('PENDING'), reserved, paymentsOn)).toEqual({
      outcome: 'moved',
      status: 'CONFIRMED',
      announce: ['OrderConfirmed'],
      reason: null,
      pricedItems: reserved.event === 'StockReserved' && reserved.items,
      totalCents: 2_000,
      currency: 'EUR',
      holdSeconds: 900,
    });
  });

  it('given payments are off, when stock is reserved, then the order is CONFIRMED without a hold', () => {
    expect(decideAnswer(given('PENDING'), reserved, paymentsOff)).toMatchObject({ status: 'CONFIRMED', holdSeconds: null });
  });

  it('given a PENDING order, when stock is rejected, then it is CANCELLED with the reason, and OrderCancelled is announced', () => {
    expect(decideAnswer(given('PENDING'), rejected, paymentsOn)).toEqual({
      outcome: 'moved',
      status: 'CANCELLED',
      announce: ['OrderCancelled'],
      reason: rejected.event === 'StockRejected' && rejected.reason,
      pricedItems: null,
      totalCents: null,
      currency: null,
      holdSeconds: null,
    });
  });

  it.each(['CONFIRMED', 'PAID', 'CANCELLED', 'FULFILLED'] as const)(
    'given a %s order, when a late or stray answer comes, then nothing changes',
    (status) => {
      expect(decideAnswer(given(status), rejected, paymentsOn)).toEqual({ outcome: 'unchanged' });
      expect(decideAnswer(given(status), reserved, paymentsOn)).toEqual({ outcome: 'unchanged' });
    },
  );

  it('given no such order, or a release, then nothing changes', () => {
    expect(decideAnswer(undefined, reserved, paymentsOn)).toEqual({ outcome: 'unchanged' });
    expect(decideAnswer(given('PENDING'), released, paymentsOn)).toEqual({ outcome: 'unchanged' });
  });

  it('given answers for one order in one batch, then the first that decides it wins', () => {
    const orders = new Map([['ORD-1', given('PENDING')]]);
    expect(decideAnswers(orders, [released, reserved, rejected], paymentsOn).get('ORD-1')?.status).toBe('CONFIRMED');
    expect(decideAnswers(orders, [rejected, reserved], paymentsOn).get('ORD-1')?.status).toBe('CANCELLED');
    expect(decideAnswers(new Map(), [reserved], paymentsOn).size).toBe(0);
  });
});

describe('a transition asked by a person', () => {
  const cancel = { orderId: 'ORD-1', to: 'CANCELLED', reason: 'changed my mind' } as const;
  const fulfil = { orderId: 'ORD-1', to: 'FULFILLED', reason: null } as const;

  it.each(['PENDING', 'CONFIRMED'] as const)(
    'given a %s order, when it is cancelled, then it is CANCELLED with nothing to refund',
    (status) => {
      expect(decideTransition(given(status), cancel, true)).toEqual({
        outcome: 'moved',
        status: 'CANCELLED',
        announce: ['OrderCancelled'],
        reason: 'changed my mind',
        refund: false,
      });
    },
  );

  it('given a PAID order, when it is cancelled, then it is CANCELLED and its money is asked back', () => {
    expect(decideTransition(given('PAID'), cancel, true)).toMatchObject({ status: 'CANCELLED', refund: true });
  });

  it('given a PAID order, when it is fulfilled, then it is FULFILLED and OrderFulfilled is announced', () => {
    expect(decideTransition(given('PAID'), fulfil, true)).toEqual({
      outcome: 'moved',
      status: 'FULFILLED',
      announce: ['OrderFulfilled'],
      reason: null,
      refund: false,
    });
  });

  it('given a CONFIRMED order with a hold, when it is fulfilled while payments are on, then PAYMENT_REQUIRED', () => {
    const decision = decideTransition(given('CONFIRMED'), fulfil, true);
    expect(decision.outcome === 'refused' && decision.error).toMatchObject({
      code: 'PAYMENT_REQUIRED',
      details: { status: 'CONFIRMED', paymentDueAt: DUE },
    });
  });

  it('given a CONFIRMED order, when it is fulfilled while payments are off or it has no hold, then it is FULFILLED', () => {
    expect(decideTransition(given('CONFIRMED'), fulfil, false)).toMatchObject({ outcome: 'moved', status: 'FULFILLED' });
    expect(decideTransition(given('CONFIRMED', { paymentDueAt: null }), fulfil, true)).toMatchObject({ outcome: 'moved' });
  });

  it.each([
    ['CANCELLED', cancel, ['PENDING', 'CONFIRMED', 'PAID']],
    ['FULFILLED', cancel, ['PENDING', 'CONFIRMED', 'PAID']],
    ['PENDING', fulfil, ['CONFIRMED', 'PAID']],
    ['CANCELLED', fulfil, ['CONFIRMED', 'PAID']],
  ] as const)('given a %s order, when %o is asked, then INVALID_TRANSITION names where it could move from', (status, request, from) => {
    const decision = decideTransition(given(status), request, true);
    expect(decision.outcome === 'refused' && decision.error).toMatchObject({
      code: 'INVALID_TRANSITION',
      details: { status, allowedFrom: from },
    });
  });

  it("given no such order, or another customer's, when a customer asks, then NOT_FOUND alike", () => {
    for (const order of [undefined, given('PENDING', { customerId: 'bob' })]) {
      const decision = decideTransition(order, { ...cancel, customerId: 'alice' }, true);
      expect(decision.outcome === 'refused' && decision.error).toMatchObject({
        code: 'NOT_FOUND',
        message: 'order ORD-1 does not exist',
        details: { orderId: 'ORD-1' },
      });
    }
    expect(decideTransition(given('PENDING', { customerId: 'bob' }), cancel, true).outcome).toBe('moved');
  });
});

const hold = (status: OrderStatus, holdExpired: boolean, paymentDueIso: string | null = DUE): Hold => ({
  status,
  holdExpired,
  paymentDueIso,
});

describe('the expiry of a payment hold', () => {
  it('given a CONFIRMED order whose hold is over, then it is CANCELLED with the due time as the reason', () => {
    expect(decideExpiry(hold('CONFIRMED', true))).toEqual({
      outcome: 'moved',
      status: 'CANCELLED',
      announce: ['OrderCancelled'],
      reason: `Payment not received by ${DUE}`,
    });
  });

  it('given an order paid, cancelled, within its hold, or without one, then nothing changes', () => {
    for (const h of [hold('PAID', true), hold('CANCELLED', true), hold('CONFIRMED', false), hold('CONFIRMED', false, null)]) {
      expect(decideExpiry(h)).toEqual({ outcome: 'unchanged' });
    }
  });
});

describe('a payment', () => {
  const payable = (status: OrderStatus, holdExpired = false): PayableOrder & Hold => ({
    status,
    totalCents: 2_000,
    currency: 'EUR',
    holdExpired,
    paymentDueIso: DUE,
  });
  const pays = (paymentId = 'p1', amount = 2_000): PaymentEvent => ({
    event: 'PaymentSucceeded',
    payment_id: paymentId,
    order_id: 'ORD-1',
    amount_cents: amount,
    currency: 'EUR',
  });
  const fails = (paymentId = 'p1'): PaymentEvent => ({
    event: 'PaymentFailed',
    payment_id: paymentId,
    order_id: 'ORD-1',
    reason: 'declined',
  });
  const decided = (
    order: (PayableOrder & Hold) | undefined,
    payments: PaymentEvent[],
    recorded: Parameters<typeof decidePayments>[1] = [],
  ) => {
    const decision = decidePayments(new Map(order ? [['ORD-1', order]] : []), recorded, payments);
    if (decision.outcome !== 'decided') throw decision.error;
    return {
      records: [...decision.records.values()].map((r) => [r.payment.payment_id, r.outcome, r.index]),
      orders: [...decision.orders],
    };
  };

  it('given a CONFIRMED order within its hold, when its total is paid, then it is PAID by that payment and OrderPaid is announced', () => {
    expect(decided(payable('CONFIRMED'), [pays()])).toEqual({
      records: [['p1', 'PAID', 0]],
      orders: [['ORD-1', { outcome: 'moved', status: 'PAID', announce: ['OrderPaid'], paymentId: 'p1' }]],
    });
  });

  it('given an order just paid in the same batch, when a second payment comes, then its money is asked back', () => {
    expect(decided(payable('CONFIRMED'), [pays('p1'), pays('p2')]).records).toEqual([
      ['p1', 'PAID', 0],
      ['p2', 'REFUND_REQUESTED', 1],
    ]);
  });

  it('given a failed attempt, when the provider retries it and it succeeds, then one record says PAID', () => {
    expect(decided(payable('CONFIRMED'), [fails(), pays()]).records).toEqual([['p1', 'PAID', 1]]);
    expect(decided(payable('CONFIRMED'), [pays()], [{ paymentId: 'p1', orderId: 'ORD-1', outcome: 'FAILED' }]).records).toEqual([
      ['p1', 'PAID', 0],
    ]);
  });

  it('given a payment already recorded, when it comes again, then nothing is decided', () => {
    expect(decided(payable('PAID'), [pays()], [{ paymentId: 'p1', orderId: 'ORD-1', outcome: 'PAID' }])).toEqual({
      records: [],
      orders: [],
    });
    expect(decided(payable('CONFIRMED'), [fails(), fails()]).records).toEqual([['p1', 'FAILED', 0]]);
  });

  it('given a CONFIRMED order whose hold is over, when money comes, then it is asked back and the order is CANCELLED as expired', () => {
    expect(decided(payable('CONFIRMED', true), [pays()])).toEqual({
      records: [['p1', 'REFUND_REQUESTED', 0]],
      orders: [
        ['ORD-1', { outcome: 'moved', status: 'CANCELLED', announce: ['OrderCancelled'], reason: `Payment not received by ${DUE}` }],
      ],
    });
  });

  it('given no such order, when money comes, then it is asked back and no order moves', () => {
    expect(decided(undefined, [pays()])).toEqual({ records: [['p1', 'REFUND_REQUESTED', 0]], orders: [] });
  });

  it('given a payment id recorded for another order, then the whole batch is refused with CONFLICT', () => {
    const decision = decidePayments(
      new Map([['ORD-1', payable('CONFIRMED')]]),
      [{ paymentId: 'p1', orderId: 'ORD-9', outcome: 'FAILED' }],
      [pays()],
    );
    expect(decision.outcome === 'refused' && decision.error).toMatchObject({
      code: 'CONFLICT',
      details: { paymentId: 'p1', orderId: 'ORD-9' },
    });
    const sameBatch = decidePayments(new Map(), [], [pays(), { ...pays(), order_id: 'ORD-2' }]);
    expect(sameBatch.outcome).toBe('refused');
  });
});

describe('a repeated createOrder', () => {
  it('given an order created with the key, then the same lines get that order and other lines CONFLICT', () => {
    const earlier = given('CONFIRMED');
    expect(answerRepeat(earlier, { customerId: 'alice', items: earlier.items, idempotencyKey: 'k' })).toBe(earlier);
    expect(answerRepeat(earlier, { customerId: 'alice', items: [{ product_id: 1, quantity: 3 }], idempotencyKey: 'k' })).toMatchObject({
      code: 'CONFLICT',
      details: { orderId: 'ORD-1' },
    });
  });
});

describe('the whole lifecycle, each decision meeting the order as the one before it left it', () => {
  const CREATED = new Date('2026-01-01T11:45:00.123Z');
  const later = (seconds: number) => new Date(CREATED.getTime() + seconds * 1_000);
  const created: Order = { ...given('PENDING'), createdAt: CREATED, updatedAt: CREATED };

  /** What a move may write besides the status, whichever command decided it. */
  interface Move {
    outcome: 'moved';
    status: OrderStatus;
    reason?: string | null;
    pricedItems?: Order['pricedItems'];
    totalCents?: number | null;
    currency?: string | null;
    holdSeconds?: number | null;
    paymentId?: string;
  }

  /**
   * The order as a decision taken `at` leaves it, as the application handlers write it: anything
   * but a move fails the route here, so that each step meets what the previous one really left.
   */
  const evolve = (order: Order, decision: { outcome: string } | undefined, at: Date): Order => {
    expect(decision).toMatchObject({ outcome: 'moved' });
    const move = decision as Move;
    return {
      ...order,
      status: move.status,
      reason: move.reason ?? order.reason,
      ...(move.pricedItems !== undefined && {
        pricedItems: move.pricedItems,
        totalCents: move.totalCents ?? null,
        currency: move.currency ?? null,
        paymentDueAt: move.holdSeconds ? new Date(at.getTime() + move.holdSeconds * 1_000) : null,
      }),
      paidAt: move.paymentId !== undefined ? at : order.paidAt,
      updatedAt: at,
    };
  };

  /** The order as the payment and expiry handlers read it under its lock at `now`. */
  const heldAt = (order: Order, now: Date): PayableOrder & Hold => ({
    status: order.status,
    totalCents: order.totalCents,
    currency: order.currency,
    holdExpired: order.paymentDueAt !== null && order.paymentDueAt <= now,
    paymentDueIso: order.paymentDueAt?.toISOString() ?? null,
  });

  const money = (paymentId: string, amount = 2_000): PaymentEvent => ({
    event: 'PaymentSucceeded',
    payment_id: paymentId,
    order_id: 'ORD-1',
    amount_cents: amount,
    currency: 'EUR',
  });
  const pay = (order: Order, now: Date, payments: PaymentEvent[]) => {
    const decision = decidePayments(new Map([[order.id, heldAt(order, now)]]), [], payments);
    if (decision.outcome !== 'decided') throw decision.error;
    return { records: [...decision.records.values()].map((r) => [r.outcome, r.reason]), move: decision.orders.get(order.id) };
  };
  const answer = (order: Order, answers: InventoryAnswer[], payments = paymentsOn) =>
    decideAnswers(new Map([[order.id, order]]), answers, payments).get(order.id);
  const fulfil = { orderId: 'ORD-1', to: 'FULFILLED', reason: null } as const;
  const cancel = { orderId: 'ORD-1', to: 'CANCELLED', reason: 'changed my mind' } as const;
  const refusal = (decision: ReturnType<typeof decideTransition>) => decision.outcome === 'refused' && decision.error.code;

  /** Nothing moves a final order: no answer, no expiry, no person; money for it goes back. */
  const staysFinal = (order: Order, now: Date, moneyBack: string) => {
    expect(answer(order, [reserved, rejected])).toBeUndefined();
    expect(decideExpiry({ ...heldAt(order, now), holdExpired: true })).toEqual({ outcome: 'unchanged' });
    expect(refusal(decideTransition(order, cancel, true))).toBe('INVALID_TRANSITION');
    expect(refusal(decideTransition(order, fulfil, true))).toBe('INVALID_TRANSITION');
    expect(pay(order, now, [money('late')])).toEqual({ records: [['REFUND_REQUESTED', moneyBack]], move: undefined });
  };

  it('given a new order, when stock is reserved, it is paid within its hold and fulfilled, then it is FULFILLED for good', () => {
    const confirmed = evolve(created, answer(created, [reserved]), CREATED);
    expect(confirmed).toMatchObject({ status: 'CONFIRMED', totalCents: 2_000, currency: 'EUR', paymentDueAt: new Date(DUE) });
    expect(refusal(decideTransition(confirmed, fulfil, true))).toBe('PAYMENT_REQUIRED');
    const paying = pay(confirmed, later(60), [money('p1')]);
    expect(paying.records).toEqual([['PAID', null]]);
    const paid = evolve(confirmed, paying.move, later(60));
    expect(paid).toMatchObject({ status: 'PAID', paidAt: later(60) });
    expect(decideExpiry(heldAt(paid, later(901)))).toEqual({ outcome: 'unchanged' });
    const fulfilled = evolve(paid, decideTransition(paid, fulfil, true), later(120));
    expect(fulfilled.status).toBe('FULFILLED');
    staysFinal(fulfilled, later(901), 'the order is already fulfilled');
  });

  it('given payments are off, when stock is reserved, then the order is confirmed without a hold and fulfilled directly', () => {
    const confirmed = evolve(created, answer(created, [reserved], paymentsOff), CREATED);
    expect(confirmed).toMatchObject({ status: 'CONFIRMED', paymentDueAt: null });
    expect(decideExpiry(heldAt(confirmed, later(10_000)))).toEqual({ outcome: 'unchanged' });
    const fulfilled = evolve(confirmed, decideTransition(confirmed, fulfil, false), later(60));
    expect(fulfilled.status).toBe('FULFILLED');
  });

  it('given a new order, when stock is rejected, then it is CANCELLED with the reason for good', () => {
    const cancelled = evolve(created, answer(created, [rejected, reserved]), CREATED);
    expect(cancelled).toMatchObject({ status: 'CANCELLED', reason: rejected.event === 'StockRejected' && rejected.reason });
    staysFinal(cancelled, later(60), 'the order is cancelled');
  });

  it('given a confirmed order, when its hold runs out unpaid, then it is CANCELLED as expired for good', () => {
    const confirmed = evolve(created, answer(created, [reserved]), CREATED);
    expect(decideExpiry(heldAt(confirmed, later(899)))).toEqual({ outcome: 'unchanged' });
    const expired = evolve(confirmed, decideExpiry(heldAt(confirmed, later(900))), later(900));
    expect(expired).toMatchObject({ status: 'CANCELLED', reason: `Payment not received by ${DUE}` });
    staysFinal(expired, later(901), 'the order is cancelled');
  });

  it('given a confirmed order, when money comes after its hold ran out, then it goes back and the order is CANCELLED as expired', () => {
    const confirmed = evolve(created, answer(created, [reserved]), CREATED);
    const paying = pay(confirmed, later(901), [money('p1')]);
    expect(paying.records).toEqual([['REFUND_REQUESTED', 'the payment hold expired before the payment arrived']]);
    const expired = evolve(confirmed, paying.move, later(901));
    expect(expired).toMatchObject({ status: 'CANCELLED', reason: `Payment not received by ${DUE}`, paidAt: null });
    staysFinal(expired, later(902), 'the order is cancelled');
  });

  it('given a paid order, when it is cancelled, then it is CANCELLED, its money is asked back, and it stays so', () => {
    const confirmed = evolve(created, answer(created, [reserved]), CREATED);
    const paid = evolve(confirmed, pay(confirmed, later(60), [money('p1')]).move, later(60));
    const cancelling = decideTransition(paid, cancel, true);
    expect(cancelling).toMatchObject({ status: 'CANCELLED', refund: true });
    const cancelled = evolve(paid, cancelling, later(120));
    expect(cancelled).toMatchObject({ status: 'CANCELLED', reason: 'changed my mind' });
    staysFinal(cancelled, later(901), 'the order is cancelled');
  });
});

describe('an expired hold, more closely', () => {
  it('given a CONFIRMED order said to be past a hold it does not have, then it is not cancelled (there is no due time to name)', () => {
    expect(decideExpiry(hold('CONFIRMED', true, null))).toEqual({ outcome: 'unchanged' });
  });

  it('given an expired order, when two payments for it come in one batch, then the second is refunded because the order is cancelled', () => {
    const payable: PayableOrder & Hold = { ...hold('CONFIRMED', true), totalCents: 2_000, currency: 'EUR' };
    const payment = (paymentId: string): PaymentEvent => ({
      event: 'PaymentSucceeded',
      payment_id: paymentId,
      order_id: 'ORD-1',
      amount_cents: 2_000,
      currency: 'EUR',
    });
    const decision = decidePayments(new Map([['ORD-1', payable]]), [], [payment('p1'), payment('p2')]);
    if (decision.outcome !== 'decided') throw decision.error;
    expect([...decision.records.values()].map((r) => [r.payment.payment_id, r.outcome, r.reason])).toEqual([
      ['p1', 'REFUND_REQUESTED', 'the payment hold expired before the payment arrived'],
      ['p2', 'REFUND_REQUESTED', 'the order is cancelled'],
    ]);
    expect(decision.orders.get('ORD-1')).toMatchObject({ status: 'CANCELLED', reason: `Payment not received by ${DUE}` });
  });
});

describe('backorders', () => {
  /** A reserved line of product 1: `held` units at MAIN, `backordered` not in stock yet. */
  const line = (held: number, backordered: number, productId = 1): ReservedLine => ({
    product_id: productId,
    quantity: held + backordered,
    unit_price_cents: 1_000,
    allocations: held > 0 ? [{ location_code: 'MAIN', quantity: held }] : [],
    backordered_quantity: backordered,
  });
  const fill = (eventId: string, quantity: number, location = 'MAIN', orderId = 'ORD-1'): BackorderFilled => ({
    event: 'BackorderFilled',
    event_id: eventId,
    order_id: orderId,
    items: [{ product_id: 1, quantity, location_code: location }],
  });
  const fulfil = { orderId: 'ORD-1', to: 'FULFILLED', reason: null } as const;

  it('given a backordered line, when stock arrives at a location, then its backorder goes down and its units are held there', () => {
    expect(fillLines([line(1, 3), line(0, 1, 2)], fill('e', 2, 'EAST').items)).toEqual([
      {
        ...line(1, 1),
        quantity: 4,
        allocations: [
          { location_code: 'MAIN', quantity: 1 },
          { location_code: 'EAST', quantity: 2 },
        ],
      },
      line(0, 1, 2),
    ]);
    expect(fillLines([line(1, 3)], fill('e', 2, 'MAIN').items)[0]?.allocations).toEqual([{ location_code: 'MAIN', quantity: 3 }]);
  });

  it('given two lines of the product, then the first waiting line is filled first, and no line past what it waits for', () => {
    expect(fillLines([line(2, 0), line(0, 1), line(0, 2)], fill('e', 5).items).map((l) => l.backordered_quantity)).toEqual([0, 0, 0]);
    expect(fillLines([line(0, 1), line(0, 2)], fill('e', 2).items).map((l) => l.backordered_quantity)).toEqual([0, 1]);
  });

  /** The fills of one batch, none of them in the inbox before, and none waiting. */
  const received = (...fills: BackorderFilled[]) => ({ waiting: [], received: fills, fresh: new Set(fills.map((f) => f.event_id)) });
  /** StockReserved of ORD-1 for `backordered` of 3 units of product 1 (the rest held at MAIN). */
  const reservedWith = (backordered: number): InventoryAnswer => ({
    event: 'StockReserved',
    order_id: 'ORD-1',
    items: [line(3 - backordered, backordered)],
  });
  /** ORD-1 as these answers leave it (read PENDING). */
  const answered = (...answers: InventoryAnswer[]) => {
    const decision = decideAnswers(new Map([['ORD-1', given('PENDING')]]), answers, paymentsOff).get('ORD-1');
    return new Map([['ORD-1', decision ? { status: decision.status, pricedItems: decision.pricedItems } : given('PENDING')]]);
  };

  it('given a CONFIRMED order awaiting stock, when two fills come in one batch, then both are applied in turn', () => {
    const orders = new Map([['ORD-1', given('CONFIRMED', { pricedItems: [line(0, 3)] })]]);
    expect(decideFills(orders, received(fill('a', 1, 'EAST'), fill('b', 2)))).toEqual({
      filled: new Map([
        [
          'ORD-1',
          [
            {
              ...line(0, 0),
              quantity: 3,
              allocations: [
                { location_code: 'EAST', quantity: 1 },
                { location_code: 'MAIN', quantity: 2 },
              ],
            },
          ],
        ],
      ]),
      wait: [],
      settled: [],
    });
  });

  it('given a PENDING order, when a fill overtakes its StockReserved, then the fill waits, and when StockReserved comes, its backorder is what was reported less what was filled', () => {
    const early = fill('a', 2);
    expect(decideFills(answered(), received(early))).toEqual({ filled: new Map(), wait: [early], settled: [] });

    const then = decideFills(answered(reservedWith(3)), { waiting: [early], received: [], fresh: new Set() });
    expect(then.filled.get('ORD-1')).toEqual([line(2, 1)]);
    expect(then).toMatchObject({ wait: [], settled: ['a'] });
  });

  it('given fills that waited for more than was backordered, when StockReserved comes, then nothing stays backordered, and no fewer than zero', () => {
    const then = decideFills(answered(reservedWith(2)), { waiting: [fill('a', 1), fill('b', 3)], received: [], fresh: new Set() });
    expect(then.filled.get('ORD-1')).toEqual([line(3, 0)]);
    expect(then.settled).toEqual(['a', 'b']);
  });

  it('given a fill that waited, when StockReserved and a later fill come in one batch, then both are applied, the one that waited first', () => {
    const then = decideFills(answered(reservedWith(3)), {
      waiting: [fill('a', 1, 'EAST')],
      received: [fill('b', 1)],
      fresh: new Set(['b']),
    });
    expect(then.filled.get('ORD-1')?.[0]).toMatchObject({
      backordered_quantity: 1,
      allocations: [
        { location_code: 'EAST', quantity: 1 },
        { location_code: 'MAIN', quantity: 1 },
      ],
    });
  });

  it('given a fill, when it is delivered again (in the inbox before, or twice in one batch), then it is applied once', () => {
    const orders = new Map([['ORD-1', given('CONFIRMED', { pricedItems: [line(0, 3)] })]]);
    const again = decideFills(orders, { waiting: [], received: [fill('a', 1), fill('b', 1), fill('b', 1)], fresh: new Set(['b']) });
    expect(again.filled.get('ORD-1')?.[0]?.backordered_quantity).toBe(2);
    const early = decideFills(answered(), { waiting: [], received: [fill('a', 1), fill('a', 1)], fresh: new Set(['a']) });
    expect(early.wait).toEqual([fill('a', 1)]);
  });

  it('given a fill that waited, when the order is rejected instead, then it is dropped and changes nothing', () => {
    expect(decideFills(answered(rejected), { waiting: [fill('a', 1)], received: [], fresh: new Set() })).toEqual({
      filled: new Map(),
      wait: [],
      settled: ['a'],
    });
  });

  it.each(['CANCELLED', 'FULFILLED'] as const)(
    'given a %s order that was confirmed with backordered units, when a fill comes, then it changes nothing and does not wait',
    (status) => {
      const orders = new Map([['ORD-1', given(status, { pricedItems: [line(1, 2)] })]]);
      expect(decideFills(orders, received(fill('a', 2)))).toEqual({ filled: new Map(), wait: [], settled: [] });
    },
  );

  it('given a fill for an order not known here or cancelled while PENDING, then it changes nothing and does not wait', () => {
    const orders = new Map([['ORD-2', given('CANCELLED', { id: 'ORD-2', pricedItems: null })]]);
    expect(decideFills(orders, received(fill('b', 1, 'MAIN', 'ORD-2'), fill('c', 1, 'MAIN', 'ORD-9')))).toEqual({
      filled: new Map(),
      wait: [],
      settled: [],
    });
  });

  it("given a fill, then the order's status is not an inventory answer to decide", () => {
    expect(decideAnswer(given('PENDING'), fill('a', 1), paymentsOn)).toEqual({ outcome: 'unchanged' });
  });

  it.each([
    ['a PAID order', 'PAID', true],
    ['a CONFIRMED order with payments off', 'CONFIRMED', false],
  ] as const)(
    'given %s awaiting stock, when it is fulfilled, then AWAITING_STOCK, and once filled it is FULFILLED',
    (_label, status, on) => {
      const waiting = given(status, { pricedItems: [line(1, 1)] });
      const refusal = decideTransition(waiting, fulfil, on);
      expect(refusal.outcome === 'refused' && refusal.error).toMatchObject({ code: 'AWAITING_STOCK', details: { status } });
      const filled = given(status, { pricedItems: fillLines([line(1, 1)], fill('a', 1).items) });
      expect(decideTransition(filled, fulfil, on)).toMatchObject({ outcome: 'moved', status: 'FULFILLED' });
    },
  );

  it('given an order awaiting stock, when it is cancelled, then it is CANCELLED as any other', () => {
    expect(
      decideTransition(given('CONFIRMED', { pricedItems: [line(0, 2)] }), { orderId: 'ORD-1', to: 'CANCELLED', reason: 'x' }, true),
    ).toMatchObject({
      status: 'CANCELLED',
    });
  });
});
