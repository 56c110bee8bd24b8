import { Counter } from 'prom-client';
import { scrapedGauge, type Metrics } from '@stockflow/platform';

export interface OrdersMetrics {
  /** Payments recorded, by outcome (PAID, FAILED, REFUND_REQUESTED). */
  payments: Counter<'outcome'>;
  /** Orders cancelled because their payment hold ran out. */
  holdsExpired: Counter;
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
  };
}
