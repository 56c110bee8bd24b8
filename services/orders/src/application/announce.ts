import { traceHeaders, type TraceContext } from '@stockflow/observability';
import type { Transaction } from '@stockflow/db';
import { notifyStatusChanges } from '../db/status-changes.ts';
import type { OrderEventName } from '../domain/lifecycle.ts';
import type { Order } from '../domain/order.ts';
import type { Payment } from '../domain/payment.ts';
import { eventFor } from '../messaging/events.ts';
import type { Effects } from './effects.ts';

/** An order that moved, with the events its decision named. */
export interface Moved {
  order: Order;
  events: readonly OrderEventName[];
  /** The trace of what moved it; its events continue it. */
  trace?: TraceContext | undefined;
  /** The payment that paid it (for OrderPaid). */
  payment?: Payment | undefined;
}

/**
 * Writes the events of orders that moved to the outbox and notifies every instance of their new
 * status, in the transaction that moved them.
 */
export async function announce(tx: Transaction, moved: readonly Moved[], { clock, outbox, logger }: Effects): Promise<void> {
  if (moved.length === 0) return;
  const events = moved.flatMap((m) =>
    m.events.map((name) => ({ m, message: { ...eventFor(name, m.order, clock, m.payment), headers: traceHeaders(m.trace) } })),
  );
  await outbox.enqueue(
    tx,
    events.map((e) => e.message),
  );
  if (logger?.isLevelEnabled('debug')) {
    tx.afterCommit(() =>
      events.forEach(({ m, message }) =>
        logger.debug(
          { order_id: m.order.id, event_id: message.messageId, correlation_id: m.trace?.traceId, status: m.order.status },
          'order status changed',
        ),
      ),
    );
  }
  await notifyStatusChanges(
    tx,
    moved.map(({ order: o }) => ({ id: o.id, customerId: o.customerId, status: o.status })),
  );
}
