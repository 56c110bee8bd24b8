import {
  routeOf,
  type EventName,
  type OrderCancelled,
  type OrderConfirmed,
  type OrderCreated,
  type OrderFulfilled,
  type OrderPaid,
  type RefundRequested,
  type OutgoingMessage,
} from '@stockflow/contracts';
import type { Clock } from '@stockflow/platform';
import type { OrderEventName } from '../domain/lifecycle.ts';
import type { Order } from '../domain/order.ts';
import type { Payment } from '../domain/payment.ts';

const message = (body: { event: EventName; event_id?: string }): OutgoingMessage => ({
  ...routeOf(body.event),
  messageId: body.event_id as string,
  body,
});

const metaOf = (clock: Clock) => ({ event_id: clock.newId(), occurred_at: clock.now().toISOString() });

/** The event `name` of an order, as it is now (OrderPaid: with the payment that paid it). */
export function eventFor(name: OrderEventName, order: Order, clock: Clock, payment?: Payment): OutgoingMessage {
  const meta = metaOf(clock);
  switch (name) {
    case 'OrderCreated': {
      const body: OrderCreated = { event: 'OrderCreated', order_id: order.id, items: order.items, ...meta };
      return message(body);
    }
    case 'OrderConfirmed': {
      const body: OrderConfirmed = { event: 'OrderConfirmed', order_id: order.id, items: order.items, ...meta };
      return message(body);
    }
    case 'OrderCancelled': {
      const body: OrderCancelled = {
        event: 'OrderCancelled',
        order_id: order.id,
        ...(order.reason ? { reason: order.reason } : {}),
        ...meta,
      };
      return message(body);
    }
    case 'OrderFulfilled': {
      const body: OrderFulfilled = { event: 'OrderFulfilled', order_id: order.id, ...meta };
      return message(body);
    }
    case 'OrderPaid': {
      if (!payment || payment.amountCents === null || payment.currency === null) {
        throw new Error(`order ${order.id} is PAID without the payment that paid it`);
      }
      const body: OrderPaid = {
        event: 'OrderPaid',
        order_id: order.id,
        payment_id: payment.paymentId,
        amount_cents: payment.amountCents,
        currency: payment.currency,
        ...meta,
      };
      return message(body);
    }
  }
}

/** Asks the payment service to give back money the order cannot keep. */
export function refundFor(payment: Payment, clock: Clock): OutgoingMessage {
  if (payment.amountCents === null || payment.currency === null) throw new Error(`payment ${payment.paymentId} took no money to refund`);
  const body: RefundRequested = {
    event: 'RefundRequested',
    payment_id: payment.paymentId,
    order_id: payment.orderId,
    amount_cents: payment.amountCents,
    currency: payment.currency,
    reason: payment.reason ?? 'refund',
    ...metaOf(clock),
  };
  return message(body);
}
