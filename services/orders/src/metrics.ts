import { Counter } from 'prom-client';
import { scrapedGauge, type Metrics } from '@stockflow/observability';
import { MAX_PENDING_CHANGES, STATUS_SUBSCRIPTIONS } from './graphql/status-feed.ts';

export interface OrdersMetrics {
  /** Payments recorded, by outcome (PAID, FAILED, REFUND_REQUESTED). */
  payments: Counter<'outcome'>;
  /** Orders cancelled because their payment hold ran out. */
  holdsExpired: Counter;
  /** Payment events parked in payment.orders.dlq, by whether they took money (taken, none, unknown). */
  paymentsParked: Counter<'money'>;
  /** The money in parked payment events that took some, by currency (as far as their bodies can be read). */
  paymentsParkedCents: Counter<'currency'>;
  /** Subscribers whose stream was ended because they fell too far behind, by subscription field. */
  subscribersTooSlow: Counter<'subscription'>;
}

/** Every subscription field at 0 from the start, so that an alert on its increase has a series before the first. */
function subscribersTooSlow(metrics: Metrics): Counter<'subscription'> {
  const counter = new Counter({
    name: 'stockflow_subscribers_too_slow_total',
    help: `Subscribers ended with SUBSCRIBER_TOO_SLOW, by subscription field: more than ${MAX_PENDING_CHANGES} status changes waited for them (a client not reading, or reading slower than orders change).`,
    labelNames: ['subscription'],
    registers: [metrics.registry],
  });
  for (const subscription of STATUS_SUBSCRIPTIONS) counter.inc({ subscription }, 0);
  return counter;
}

/** The Order Service's own metrics, besides those every service has. */
export function registerOrdersMetrics(
  metrics: Metrics,
  orders: { oldestPendingAgeSeconds(): Promise<number>; overdueHoldSeconds(): Promise<number> },
): OrdersMetrics {
  scrapedGauge(metrics, {
    name: 'stockflow_oldest_pending_order_age_seconds',
    help: 'Age of the oldest order still PENDING (0 when none): an order nobody answered shows here; see npm run reconcile.',
    read: () => orders.oldestPendingAgeSeconds(),
  });
  scrapedGauge(metrics, {
    name: 'stockflow_oldest_overdue_hold_seconds',
    help: 'How long ago the oldest unpaid CONFIRMED order should have been released (0 when none): the expiry sweep is behind or stopped.',
    read: () => orders.overdueHoldSeconds(),
  });
  return {
    payments: new Counter({
      name: 'stockflow_payments_total',
      help: 'Payments recorded, by outcome: PAID (kept), FAILED (no money taken), REFUND_REQUESTED (money asked back).',
      labelNames: ['outcome'],
      registers: [metrics.registry],
    }),
    holdsExpired: new Counter({
      name: 'stockflow_payment_holds_expired_total',
      help: 'CONFIRMED orders cancelled because they were not paid by their paymentDueAt.',
      registers: [metrics.registry],
    }),
    paymentsParked: new Counter({
      name: 'stockflow_payments_parked_total',
      help: 'Payment events parked in payment.orders.dlq (unreadable, or a payment id of another order), by money: taken (PaymentSucceeded: money held with no record and no refund asked), none (PaymentFailed), unknown (the body cannot tell).',
      labelNames: ['money'],
      registers: [metrics.registry],
    }),
    paymentsParkedCents: new Counter({
      name: 'stockflow_payments_parked_cents_total',
      help: 'Money in the payment events parked in payment.orders.dlq that took money, in cents of currency (unknown when unreadable): to give back by hand, or to replay once the cause is fixed.',
      labelNames: ['currency'],
      registers: [metrics.registry],
    }),
    subscribersTooSlow: subscribersTooSlow(metrics),
  };
}
