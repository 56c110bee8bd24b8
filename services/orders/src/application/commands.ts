import type { PaymentEvent } from '@stockflow/contracts';
import { createBatcher } from '@stockflow/platform';
import type { Database } from '@stockflow/db';
import type { TraceContext } from '@stockflow/observability';
import type { NewOrder, Order } from '../domain/order.ts';
import { changeStatus } from './change-status.ts';
import { createOrders, type Intake } from './create-order.ts';
import type { Effects } from './effects.ts';
import { expireHolds } from './expire-holds.ts';
import { recordPayment } from './pay-orders.ts';
import { republishPending } from './republish-pending.ts';

/** The commands the API and the expiry sweep give, each one handler in a transaction of its own. */
export function orderCommands(db: Database, effects: Effects) {
  // Concurrent createOrder calls share one transaction (one commit) and one statement per table:
  // while a batch commits, the calls arriving meanwhile gather into the next.
  const intake = createBatcher<Intake, Order>({
    maxBatch: 200,
    maxInFlight: 2,
    run: (orders) => db.transaction((tx) => createOrders(tx, orders, effects)),
  });

  return {
    create: (order: NewOrder, trace?: TraceContext) => intake.submit({ ...order, trace }),
    /** Cancels the order; with `customerId`, only if it is that customer's. */
    cancel: (id: string, reason: string | null, trace?: TraceContext, customerId?: string) =>
      changeStatus(db, effects, { orderId: id, to: 'CANCELLED', reason: reason ?? 'Cancelled by request', customerId }, trace),
    fulfil: (id: string, trace?: TraceContext) => changeStatus(db, effects, { orderId: id, to: 'FULFILLED', reason: null }, trace),
    recordPayment: (payment: PaymentEvent, trace?: TraceContext) => recordPayment(db, effects, payment, trace),
    expireHolds: (limit: number) => expireHolds(db, effects, limit),
    republishPending: (olderThanSeconds: number, limit: number) => republishPending(db, effects, olderThanSeconds, limit),
  };
}

export type OrderCommands = ReturnType<typeof orderCommands>;
