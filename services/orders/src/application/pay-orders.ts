import type { PaymentEvent } from '@stockflow/contracts';
import { traceHeaders, type TraceContext } from '@stockflow/observability';
import type { Database, Transaction } from '@stockflow/db';
import { lockPayable, writeHoldOutcomes } from '../db/orders.ts';
import { lockPaymentIds, paymentById, paymentsByIds, writePayments } from '../db/payments.ts';
import { decidePayments } from '../domain/lifecycle.ts';
import type { Payment } from '../domain/payment.ts';
import { refundFor } from '../messaging/events.ts';
import { announce } from './announce.ts';
import { paymentsOn, type Effects } from './effects.ts';

/**
 * Applies payments in the caller's transaction. The orders they name are locked first, in id
 * order (as every other writer of orders does), then their payment ids, so a payment and the
 * expiry sweep, or two instances with the same payment (for an order that exists or not), are
 * decided one after the other: a payment racing its order's expiry ends in exactly one outcome,
 * and a repeat finds the first one's record. Each payment's verdict is recorded with it
 * (decidePayments); what the order cannot keep is asked back with RefundRequested, and a payment
 * that arrives after the hold is over cancels the order at once.
 */
export async function applyPayments(
  tx: Transaction,
  payments: readonly PaymentEvent[],
  effects: Effects,
  traces: readonly (TraceContext | undefined)[] = [],
): Promise<void> {
  const orders = await lockPayable(tx, [...new Set(payments.map((p) => p.order_id))], paymentsOn(effects));
  const paymentIds = [...new Set(payments.map((p) => p.payment_id))];
  await lockPaymentIds(tx, paymentIds);
  const known = await paymentsByIds(tx, paymentIds);
  const decision = decidePayments(new Map(orders.map((o) => [o.id, o])), known, payments);
  if (decision.outcome === 'refused') throw decision.error;
  const { records, orders: moves } = decision;
  if (records.size === 0) return;

  const written = await writePayments(tx, records.values());
  if (written.length !== records.size) {
    // Cannot happen while every transaction recording a payment holds its id's lock: rolled back
    // rather than leave a payment decided and not recorded.
    throw new Error(`${records.size - written.length} payment(s) of this batch were recorded by another transaction`);
  }
  const expired = [...moves.values()].filter((m) => m.status === 'CANCELLED').length;
  tx.afterCommit(() => {
    for (const p of written) effects.metrics?.payments.inc({ outcome: p.outcome });
    if (expired > 0) effects.metrics?.holdsExpired.inc(expired);
  });
  const writtenById = new Map(written.map((p) => [p.paymentId, p]));
  const traceOf = (paymentId: string | undefined) => {
    const record = paymentId === undefined ? undefined : records.get(paymentId);
    return record && traces[record.index];
  };

  const moved = await writeHoldOutcomes(
    tx,
    [...moves].map(([id, m]) => ({ id, status: m.status as 'PAID' | 'CANCELLED', reason: m.reason ?? null })),
  );
  await announce(
    tx,
    moved.map((order) => {
      const move = moves.get(order.id);
      return {
        order,
        events: move?.announce ?? [],
        trace: traceOf(move?.paymentId),
        payment: move?.paymentId === undefined ? undefined : writtenById.get(move.paymentId),
      };
    }),
    effects,
  );
  await effects.outbox.enqueue(
    tx,
    written
      .filter((p) => p.outcome === 'REFUND_REQUESTED')
      .map((p) => ({ ...refundFor(p, effects.clock), headers: traceHeaders(traceOf(p.paymentId)) })),
  );
}

/**
 * A payment reported over HTTP (a provider's callback, through the recordPayment mutation):
 * judged exactly as a PaymentSucceeded from the broker. Returns the payment as recorded (the
 * first record, for a repeated payment id).
 */
export const recordPayment = (db: Database, effects: Effects, payment: PaymentEvent, trace?: TraceContext): Promise<Payment> =>
  db.transaction(async (tx) => {
    await applyPayments(tx, [payment], effects, [trace]);
    return paymentById(tx, payment.payment_id);
  });
