import { scrapedGauge, type Metrics } from '@stockflow/platform';

/** The Order Service's own metrics, besides those every service has. */
export function registerOrdersMetrics(metrics: Metrics, orders: { oldestPendingAgeSeconds(): Promise<number> }): void {
  scrapedGauge(metrics, {
    name: 'stockflow_oldest_pending_order_age_seconds',
    help: 'Age of the oldest order still PENDING (0 when none): an order nobody answered shows here; see npm run reconcile.',
    read: () => orders.oldestPendingAgeSeconds(),
  });
}
