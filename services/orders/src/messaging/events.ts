import { randomUUID } from 'node:crypto';
import {
  EXCHANGES,
  ROUTING_KEYS,
  type OrderCancelled,
  type OrderConfirmed,
  type OrderCreated,
  type OrderFulfilled,
} from '@stockflow/contracts';
import type { OutgoingMessage } from '@stockflow/platform';
import type { Order } from '../domain/order.ts';

export interface Clock {
  now(): Date;
  newId(): string;
}

export const systemClock: Clock = { now: () => new Date(), newId: () => randomUUID() };

const message = (routingKey: string, body: { event_id?: string }): OutgoingMessage => ({
  exchange: EXCHANGES.orders,
  routingKey,
  messageId: body.event_id as string,
  body,
});

/** The event an order owes the world on entering its current status (PENDING: just created). */
export function eventFor(order: Order, clock: Clock): OutgoingMessage {
  const meta = { event_id: clock.newId(), occurred_at: clock.now().toISOString() };
  switch (order.status) {
    case 'PENDING': {
      const body: OrderCreated = { event: 'OrderCreated', order_id: order.id, items: order.items, ...meta };
      return message(ROUTING_KEYS.orderCreated, body);
    }
    case 'CONFIRMED': {
      const body: OrderConfirmed = { event: 'OrderConfirmed', order_id: order.id, items: order.items, ...meta };
      return message(ROUTING_KEYS.orderConfirmed, body);
    }
    case 'CANCELLED': {
      const body: OrderCancelled = {
        event: 'OrderCancelled',
        order_id: order.id,
        ...(order.reason ? { reason: order.reason } : {}),
        ...meta,
      };
      return message(ROUTING_KEYS.orderCancelled, body);
    }
    case 'FULFILLED': {
      const body: OrderFulfilled = { event: 'OrderFulfilled', order_id: order.id, ...meta };
      return message(ROUTING_KEYS.orderFulfilled, body);
    }
  }
}
