import { Counter } from 'prom-client';
import { scrapedGauge, type Metrics } from '@stockflow/platform';

export interface OrdersMetrics {
  /** Payments recorded, by outcome (PAID, FAILED, REFUND_REQUESTED). */
  payments: Counter<'outcome'>;
  /** Orders cancelled because their payment hold ran out. */
  holdsExpired: Counter;
  /** Payment events parked in payment.orders.dlq, by whether they took money (taken, none, unknown). */
  paymentsParked: Counter<'money'>;
  /** The money in parked payment events that took some, by currency (as far as their bodies can be read). */
  paymentsParkedCents: Counter<'currency'>;
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
  };
}
