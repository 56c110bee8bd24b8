import type { Database } from '@stockflow/db';
import type { TraceContext } from '@stockflow/observability';
import { lockOrder, writeStatus } from '../db/orders.ts';
import { markForRefund } from '../db/payments.ts';
import { decideTransition, type TransitionRequest } from '../domain/lifecycle.ts';
import type { Order } from '../domain/order.ts';
import { refundFor } from '../messaging/events.ts';
import { announce } from './announce.ts';
import { paymentsOn, type Effects } from './effects.ts';

/**
 * A transition a person asks for (cancelOrder, fulfillOrder), in one transaction: the order is
 * locked, decided (decideTransition; a refusal is thrown to the caller), written and announced.
 * Money kept for an order cancelled after it was paid goes back: its payment is marked for
 * refund and a RefundRequested is written, in the cancellation's transaction.
 */
export const changeStatus = (db: Database, effects: Effects, request: TransitionRequest, trace: TraceContext | undefined): Promise<Order> =>
  db.transaction(async (tx) => {
    const decision = decideTransition(await lockOrder(tx, request.orderId), request, paymentsOn(effects));
    if (decision.outcome === 'refused') throw decision.error;
    const order = await writeStatus(tx, request.orderId, decision.status, decision.reason);
    await announce(tx, [{ order, events: decision.announce, trace }], effects);
    if (decision.refund) {
      const refunds = await markForRefund(tx, [order.id], 'the order was cancelled after it was paid');
      await effects.outbox.enqueue(
        tx,
        refunds.map((p) => refundFor(p, effects.clock)),
      );
    }
    return order;
  });
