import type { BackorderFilled, InventoryAnswer, PaymentEvent, ReservedLine } from '@stockflow/contracts';
import { AppError, ConflictError, NotFoundError } from '@stockflow/platform';
import {
  allowedFrom,
  awaitingStock,
  awaitsPayment,
  isFinal,
  sameLines,
  transitionError,
  type NewOrder,
  type Order,
  type OrderStatus,
} from './order.ts';
import { judgePayment, orderTotal, type PayableOrder, type PaymentOutcome } from './payment.ts';

/**
 * The order lifecycle as decisions: each command meets the order as it was read under its row
 * lock and returns what happens to it, without touching the database. The application handlers
 * write what was decided and announce the events it names.
 */

/** What an order tells the world when it moves. */
export type OrderEventName = 'OrderCreated' | 'OrderConfirmed' | 'OrderPaid' | 'OrderCancelled' | 'OrderFulfilled';

/** The event announced on entering each status. */
export const ANNOUNCED: Record<OrderStatus, OrderEventName> = {
  PENDING: 'OrderCreated',
  CONFIRMED: 'OrderConfirmed',
  PAID: 'OrderPaid',
  CANCELLED: 'OrderCancelled',
  FULFILLED: 'OrderFulfilled',
};

/**
 * What one command does to one order: it moves to `status` (with what the move writes besides,
 * `Change`, and the events to announce), nothing happens (a late or repeated message), or the
 * command is refused with an error the caller sees.
 */
export type Decision<Change> =
  | ({ outcome: 'moved'; status: OrderStatus; announce: OrderEventName[] } & Change)
  | { outcome: 'unchanged' }
  | { outcome: 'refused'; error: AppError };

const unchanged = { outcome: 'unchanged' } as const;
const refused = (error: AppError) => ({ outcome: 'refused', error }) as const;
const moved = <Change>(status: OrderStatus, change: Change) => ({
  outcome: 'moved' as const,
  status,
  announce: [ANNOUNCED[status]],
  ...change,
});

/** How the shop takes payment. */
export interface PaymentSettings {
  /** How long a CONFIRMED order holds its units for payment; 0: payments are off (taken elsewhere). */
  holdSeconds: number;
  /** ISO 4217 code of the shop's prices. */
  currency: string;
}

/** What Inventory's answer writes besides the status. */
export interface AnswerChange {
  /** Why it was rejected; null keeps the order's reason. */
  reason: string | null;
  pricedItems: ReservedLine[] | null;
  totalCents: number | null;
  currency: string | null;
  /** The payment hold it starts (from the database's now), in seconds; null: none (payments off, or rejected). */
  holdSeconds: number | null;
}

/**
 * An answer of the Inventory Service. It decides a PENDING order only: a rejection must never
 * cancel a confirmed order (a customer may cancel one; a stray answer may not), and a late or
 * repeated answer changes nothing. StockReleased needs nothing (the order was already CANCELLED
 * when it was asked for). A reservation brings the prices: the total is fixed, and the hold starts.
 */
export function decideAnswer(
  order: Pick<Order, 'status'> | undefined,
  answer: InventoryAnswer,
  payments: PaymentSettings,
): Decision<AnswerChange> {
  if (order?.status !== 'PENDING') return unchanged;
  switch (answer.event) {
    case 'StockReleased':
    case 'BackorderFilled':
      return unchanged;
    case 'StockReserved':
      return moved('CONFIRMED', {
        reason: null,
        pricedItems: answer.items,
        totalCents: orderTotal(answer.items),
        currency: payments.currency,
        holdSeconds: payments.holdSeconds > 0 ? payments.holdSeconds : null,
      });
    case 'StockRejected':
      return moved('CANCELLED', { reason: answer.reason, pricedItems: null, totalCents: null, currency: null, holdSeconds: null });
  }
}

/**
 * The order's reserved lines once stock arrived for them: each item lowers the backordered units
 * of the lines of its product (the first lines first) and adds to their units held at its
 * location. Units beyond what a line still waits for are not counted: they cannot be held for it.
 */
export function fillLines(lines: readonly ReservedLine[], items: BackorderFilled['items']): ReservedLine[] {
  const filled = lines.map((line) => ({ ...line, allocations: [...(line.allocations ?? [])] }));
  for (const item of items) {
    let left = item.quantity;
    for (const line of filled) {
      const take = line.product_id === item.product_id ? Math.min(left, line.backordered_quantity ?? 0) : 0;
      if (take === 0) continue;
      line.backordered_quantity = (line.backordered_quantity ?? 0) - take;
      const at = line.allocations.findIndex((a) => a.location_code === item.location_code);
      const held = line.allocations[at];
      if (held) line.allocations[at] = { ...held, quantity: held.quantity + take };
      else line.allocations.push({ location_code: item.location_code, quantity: take });
      left -= take;
    }
  }
  return filled;
}

/** A BackorderFilled as it is applied (kept while it waits for its order's reservation). */
export type Fill = Pick<BackorderFilled, 'event_id' | 'order_id' | 'items'>;

export interface FillsDecision {
  /** By order id: its lines once every fill applied now is applied. */
  filled: Map<string, ReservedLine[]>;
  /** Received fills for orders not confirmed yet (each overtook its StockReserved): kept until it comes. */
  wait: Fill[];
  /** Ids of the fills that waited and no longer do: applied now, or dropped with their order. */
  settled: string[];
}

/**
 * Backorders filled, each applied once, in turn, to the order as the ones before left it:
 * `waiting` (kept earlier, for orders that may have been confirmed since), then `received` (this
 * batch), of which only the `fresh` ids (not in the inbox before) and only once each. A fill for
 * an order still PENDING waits for its reservation: the Inventory Service's relays publish in no
 * promised order, so it may overtake StockReserved, and the lines it fills only come with that.
 * A fill changes nothing for an order not known here, nor for one that is over: a CANCELLED
 * order's units (those filled too) go back with its release, and a FULFILLED one never waited.
 */
export function decideFills(
  orders: ReadonlyMap<string, Pick<Order, 'status' | 'pricedItems'>>,
  { waiting, received, fresh }: { waiting: readonly Fill[]; received: readonly Fill[]; fresh: ReadonlySet<string> },
): FillsDecision {
  const filled = new Map<string, ReservedLine[]>();
  const wait: Fill[] = [];
  const settled: string[] = [];
  const apply = (fill: Fill): 'applied' | 'waits' | 'dropped' => {
    const order = orders.get(fill.order_id);
    if (order?.status === 'PENDING') return 'waits';
    if (!order || isFinal(order.status) || order.pricedItems === null) return 'dropped';
    filled.set(fill.order_id, fillLines(filled.get(fill.order_id) ?? order.pricedItems, fill.items));
    return 'applied';
  };
  for (const fill of waiting) if (apply(fill) !== 'waits') settled.push(fill.event_id);
  const seen = new Set<string>();
  for (const fill of received) {
    if (!fresh.has(fill.event_id) || seen.has(fill.event_id)) continue;
    seen.add(fill.event_id);
    if (apply(fill) === 'waits') wait.push(fill);
  }
  return { filled, wait, settled };
}

/**
 * A batch of answers in arrival order, each meeting the order as the ones before it left it: the
 * first answer that decides an order wins. `orders` holds the orders as read (absent: unknown).
 */
export function decideAnswers(
  orders: ReadonlyMap<string, Pick<Order, 'status'>>,
  answers: readonly InventoryAnswer[],
  payments: PaymentSettings,
): Map<string, Extract<Decision<AnswerChange>, { outcome: 'moved' }>> {
  const statuses = new Map([...orders].map(([id, o]) => [id, { status: o.status }]));
  const decided = new Map<string, Extract<Decision<AnswerChange>, { outcome: 'moved' }>>();
  for (const answer of answers) {
    const decision = decideAnswer(statuses.get(answer.order_id), answer, payments);
    if (decision.outcome !== 'moved') continue;
    decided.set(answer.order_id, decision);
    statuses.set(answer.order_id, { status: decision.status });
  }
  return decided;
}

/** A move a person asks for (an operator, or a customer for its own order). */
export interface TransitionRequest {
  orderId: string;
  to: 'CANCELLED' | 'FULFILLED';
  /** Written as the order's reason; null keeps the one it has. */
  reason: string | null;
  /** Acting for this customer: another customer's order is treated as one that does not exist. */
  customerId?: string | undefined;
}

export interface TransitionChange {
  reason: string | null;
  /** The order was paid: the money it kept is asked back. */
  refund: boolean;
}

/**
 * A transition asked by a person. A refusal is an error the caller sees: acting for a customer,
 * another customer's order is answered as one that does not exist, so that neither the error nor
 * the status tells that it does. A CONFIRMED order with a payment hold is fulfilled only once
 * paid, while payments are on, and any order only once none of its units is backordered.
 */
export function decideTransition(
  order: Pick<Order, 'id' | 'customerId' | 'status' | 'paymentDueAt' | 'paidAt' | 'pricedItems'> | undefined,
  request: TransitionRequest,
  paymentsOn: boolean,
): Exclude<Decision<TransitionChange>, { outcome: 'unchanged' }> {
  if (!order || (request.customerId !== undefined && order.customerId !== request.customerId)) {
    return refused(new NotFoundError(`order ${request.orderId} does not exist`, { orderId: request.orderId }));
  }
  const { to } = request;
  if (!allowedFrom(to).includes(order.status) || (to === 'FULFILLED' && awaitsPayment(order, paymentsOn))) {
    return refused(transitionError(order, to, paymentsOn));
  }
  if (to === 'FULFILLED' && awaitingStock(order)) {
    return refused(
      new AppError('AWAITING_STOCK', `cannot fulfil order ${order.id}: some of its units are backordered, not in stock yet`, {
        details: { status: order.status },
      }),
    );
  }
  return moved(to, { reason: request.reason, refund: to === 'CANCELLED' && order.paidAt !== null });
}

/** An order's payment hold, as read under its row lock. */
export interface Hold {
  status: OrderStatus;
  /** Its hold is over (by the database's clock). */
  holdExpired: boolean;
  /** When the hold ended, as the database renders it to the millisecond (ISO 8601); null: no hold. */
  paymentDueIso: string | null;
}

/** Why an order whose hold ran out was cancelled: the due time it names is the order's own. */
export const expiryReason = (paymentDueIso: string) => `Payment not received by ${paymentDueIso}`;

/**
 * The expiry of a payment hold: a CONFIRMED order not paid by its due time is cancelled, and its
 * units go back through OrderCancelled -> StockReleased. Any other order (paid, cancelled
 * meanwhile, or still within its hold) stays as it is.
 */
export function decideExpiry(order: Hold): Decision<{ reason: string }> {
  if (order.status !== 'CONFIRMED' || !order.holdExpired || order.paymentDueIso === null) return unchanged;
  return moved('CANCELLED', { reason: expiryReason(order.paymentDueIso) });
}

/** What a payment writes besides the order's status. */
export type PaymentChange = { paymentId: string; reason?: never } | { reason: string; paymentId?: never };

/** A payment's record: its outcome, and why (a failure, or money asked back). */
export interface PaymentRecord {
  payment: PaymentEvent;
  /** Its position in the batch (for the trace it continues). */
  index: number;
  outcome: PaymentOutcome;
  reason: string | null;
}

export type PaymentsDecision =
  | { outcome: 'refused'; error: AppError }
  | {
      outcome: 'decided';
      /** By payment id, one each: a failure and its success in one batch are one record. */
      records: Map<string, PaymentRecord>;
      /** By order id: paid (by `paymentId`), or cancelled because its hold was over when the money came. */
      orders: Map<string, Extract<Decision<PaymentChange>, { outcome: 'moved' }>>;
    };

/**
 * Payments in arrival order, each judged against the order as the ones before it left it.
 * `orders` are the orders they name as read under their locks (with their holds); `recorded` the
 * payments of these ids recorded before. A payment id already recorded changes nothing, unless it
 * was recorded as failed and now succeeded (the provider's retry of one attempt). A payment id
 * names one payment of one order: the same id for another order is the payment service's mistake,
 * and applying it would file money under the wrong order, so the batch is refused.
 */
export function decidePayments(
  orders: ReadonlyMap<string, PayableOrder & Hold>,
  recorded: readonly { paymentId: string; orderId: string; outcome: PaymentOutcome }[],
  payments: readonly PaymentEvent[],
): PaymentsDecision {
  const recordedFor = new Map(recorded.map((p) => [p.paymentId, p.orderId]));
  for (const payment of payments) {
    const first = recordedFor.get(payment.payment_id) ?? payment.order_id;
    if (first !== payment.order_id) {
      return refused(
        new ConflictError(`payment ${payment.payment_id} was recorded for order ${first}, not ${payment.order_id}`, {
          paymentId: payment.payment_id,
          orderId: first,
        }),
      );
    }
    recordedFor.set(payment.payment_id, first);
  }
  const outcomes = new Map(recorded.map((p) => [p.paymentId, p.outcome]));
  const current = new Map([...orders].map(([id, o]) => [id, { ...o }]));
  const records = new Map<string, PaymentRecord>();
  const moves = new Map<string, Extract<Decision<PaymentChange>, { outcome: 'moved' }>>();
  payments.forEach((payment, index) => {
    const before = outcomes.get(payment.payment_id);
    if (before !== undefined && !(before === 'FAILED' && payment.event === 'PaymentSucceeded')) return;
    const order = current.get(payment.order_id);
    const verdict = judgePayment(order, payment);
    outcomes.set(payment.payment_id, verdict.outcome);
    records.set(payment.payment_id, { payment, index, outcome: verdict.outcome, reason: verdict.reason });
    if (!order) return;
    // Later payments of this batch meet the order as this one left it.
    if (verdict.outcome === 'PAID') {
      order.status = 'PAID';
      moves.set(payment.order_id, moved<PaymentChange>('PAID', { paymentId: payment.payment_id }));
    } else if (verdict.expireOrder) {
      const expiry = decideExpiry(order);
      if (expiry.outcome === 'moved') {
        order.status = expiry.status;
        moves.set(payment.order_id, expiry);
      }
    }
  });
  return { outcome: 'decided', records, orders: moves };
}

/**
 * A createOrder that repeats an idempotency key is answered with the order that key created
 * before; the same key with other lines is refused rather than silently answered with a
 * different order.
 */
export function answerRepeat(earlier: Order, request: NewOrder): Order | AppError {
  if (!sameLines(earlier.items, request.items)) {
    return new ConflictError('this idempotencyKey was already used for an order with other items', { orderId: earlier.id });
  }
  return earlier;
}
