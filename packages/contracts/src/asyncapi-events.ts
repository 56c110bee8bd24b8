import type { z } from 'zod';
import {
  BackorderFilled,
  OrderCancelled,
  OrderConfirmed,
  OrderCreated,
  OrderFulfilled,
  OrderPaid,
  PaymentFailed,
  PaymentSucceeded,
  RefundRequested,
  StockRejected,
  StockReleased,
  StockReserved,
} from './events.ts';
import type { EventName } from './topology.ts';

/** The events as the AsyncAPI document (asyncapi.ts) describes them: schema, summary and a checked example. */

/** What the document says of an event besides its route (EVENT_ROUTES). */
export interface EventSpec<Name extends EventName> {
  schema: z.ZodObject<{ event: z.ZodLiteral<Name> }>;
  summary: string;
  /** Checked against `schema` whenever the document is generated. */
  example: Record<string, unknown>;
}

const ORDER = 'ORD-12345';
const LINES = [{ product_id: 1, quantity: 2 }];
const meta = (eventId: string, occurredAt: string) => ({ event_id: eventId, occurred_at: occurredAt });

/** Each routed event (typed by the topology's routes, so a new one cannot be left out, nor given another's schema). */
export const EVENTS: { [Name in EventName]: EventSpec<Name> } = {
  OrderCreated: {
    schema: OrderCreated,
    summary: 'An order was accepted and needs stock.',
    example: {
      event: 'OrderCreated',
      order_id: ORDER,
      items: LINES,
      ...meta('1b0c2c0e-5a43-4ad9-9f5c-6a2b0f0d8d31', '2026-11-27T09:30:00.000Z'),
    },
  },
  OrderConfirmed: {
    schema: OrderConfirmed,
    summary: 'Every line of the order is reserved; for notification, shipping and similar services.',
    example: {
      event: 'OrderConfirmed',
      order_id: ORDER,
      items: LINES,
      ...meta('2f1d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b', '2026-11-27T09:30:00.030Z'),
    },
  },
  OrderCancelled: {
    schema: OrderCancelled,
    summary: 'The order was cancelled (by the customer, an operator, an expired payment hold, or because stock was rejected).',
    example: {
      event: 'OrderCancelled',
      order_id: ORDER,
      reason: 'changed my mind',
      ...meta('0c5a9a55-96a4-4a0b-a0a3-4dd1f1b0c2c1', '2026-11-27T09:31:00.000Z'),
    },
  },
  OrderFulfilled: {
    schema: OrderFulfilled,
    summary: 'The order shipped: what is held for it becomes sold.',
    example: { event: 'OrderFulfilled', order_id: ORDER, ...meta('9b6f7c1e-0d7b-4a47-8f43-2f8b6a0f1d55', '2026-11-28T14:00:00.000Z') },
  },
  StockReserved: {
    schema: StockReserved,
    summary:
      "Every line is held for the order, each with the product's price when it was reserved, the locations its units are held at, and the units backordered (promised, not on hand yet).",
    example: {
      event: 'StockReserved',
      order_id: ORDER,
      items: [
        {
          product_id: 1,
          quantity: 2,
          unit_price_cents: 19900,
          allocations: [{ location_code: 'MAIN', quantity: 2 }],
          backordered_quantity: 0,
        },
      ],
      ...meta('8e8f6c5d-2f0e-4c55-b0f5-3f8a8f2c7d10', '2026-11-27T09:30:00.012Z'),
    },
  },
  StockRejected: {
    schema: StockRejected,
    summary: 'Nothing is held for the order; `reason` and `lines` say why.',
    example: {
      event: 'StockRejected',
      order_id: 'ORD-77',
      reason: 'Insufficient stock: product 1 (requested 3, available 1); Unknown product: 42',
      lines: [
        { product_id: 1, requested: 3, available: 1, problem: 'INSUFFICIENT_STOCK' },
        { product_id: 42, requested: 1, available: null, problem: 'UNKNOWN_PRODUCT' },
      ],
      ...meta('c7b8b1a4-0f0a-4a53-8d7e-2b52a9b1f0a2', '2026-11-27T09:30:00.015Z'),
    },
  },
  StockReleased: {
    schema: StockReleased,
    summary: 'What was released for a cancelled order: every line ever released for it, empty when nothing was held.',
    example: {
      event: 'StockReleased',
      order_id: ORDER,
      items: LINES,
      ...meta('61c0ad23-5c1d-4a53-9bde-7a8e8b1f2e44', '2026-11-27T09:31:00.020Z'),
    },
  },
  BackorderFilled: {
    schema: BackorderFilled,
    summary:
      'Stock arrived for an order waiting on backordered units (oldest order first, from the location that received it): each item is held for it now. Apply each `event_id` once.',
    example: {
      event: 'BackorderFilled',
      event_id: '3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f',
      occurred_at: '2026-11-29T08:00:00.000Z',
      order_id: ORDER,
      items: [{ product_id: 1, quantity: 2, location_code: 'MAIN' }],
    },
  },
  OrderPaid: {
    schema: OrderPaid,
    summary: 'The order is paid in full; its units stay held until it is fulfilled.',
    example: {
      event: 'OrderPaid',
      order_id: ORDER,
      payment_id: 'pay_8f2a',
      amount_cents: 39800,
      currency: 'EUR',
      ...meta('5d7e1c2a-8b3f-4f60-9a1e-2c3d4e5f6a7b', '2026-11-27T09:34:10.040Z'),
    },
  },
  RefundRequested: {
    schema: RefundRequested,
    summary:
      'The Order Service holds money it cannot keep: give `amount_cents` of `payment_id` back. Delivered at least once (a repeat carries the same `event_id`): give back each `payment_id` at most once.',
    example: {
      event: 'RefundRequested',
      payment_id: 'pay_9c01',
      order_id: ORDER,
      amount_cents: 39800,
      currency: 'EUR',
      reason: 'the order is already paid',
      ...meta('7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d', '2026-11-27T09:35:00.000Z'),
    },
  },
  PaymentSucceeded: {
    schema: PaymentSucceeded,
    summary: 'A payment service took the money for an order.',
    example: {
      event: 'PaymentSucceeded',
      payment_id: 'pay_8f2a',
      order_id: ORDER,
      amount_cents: 39800,
      currency: 'EUR',
      occurred_at: '2026-11-27T09:34:10.000Z',
    },
  },
  PaymentFailed: {
    schema: PaymentFailed,
    summary: 'A payment attempt failed; the order may still be paid until its hold is over.',
    example: {
      event: 'PaymentFailed',
      payment_id: 'pay_8f29',
      order_id: ORDER,
      reason: 'card declined',
      occurred_at: '2026-11-27T09:33:55.000Z',
    },
  },
};

/** Each routed event's schema, by name: what the document's payload of that event says. */
export const EVENT_SCHEMAS = Object.fromEntries(Object.entries(EVENTS).map(([name, spec]) => [name, spec.schema])) as {
  [Name in EventName]: EventSpec<Name>['schema'];
};
