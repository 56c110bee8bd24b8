import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The Prometheus metrics of one service, served at /metrics. Each service has its own registry
 * (the embedded mode runs two in one process), labelled with the service's name. Names and labels
 * are what the Grafana dashboard and the alert rules under deploy/observability use.
 */
export function createMetrics(service: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  return {
    registry,
    messagesConsumed: new Counter({
      name: 'stockflow_messages_consumed_total',
      help: 'Deliveries handled, by queue, event type and outcome (applied, retried, parked, requeued).',
      labelNames: ['queue', 'event', 'outcome'] as const,
      registers,
    }),
    messagesPublished: new Counter({
      name: 'stockflow_messages_published_total',
      help: 'Messages published from the outbox, by routing key and outcome (confirmed, failed).',
      labelNames: ['routing_key', 'outcome'] as const,
      registers,
    }),
    batchDuration: new Histogram({
      name: 'stockflow_batch_duration_seconds',
      help: 'Time to apply one batch of deliveries (one transaction), by queue.',
      labelNames: ['queue'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    batchSize: new Histogram({
      name: 'stockflow_batch_size',
      help: 'Deliveries applied per batch, by queue.',
      labelNames: ['queue'] as const,
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
      registers,
    }),
    decisions: new Counter({
      name: 'stockflow_reservation_decisions_total',
      help: 'Orders decided by the Inventory Service, by outcome (reserved, rejected).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    rejections: new Counter({
      name: 'stockflow_rejections_total',
      help: 'Rejected orders by reason (insufficient_stock, unknown_product, cancelled_before_reservation).',
      labelNames: ['reason'] as const,
      registers,
    }),
    consumersUp: new Gauge({
      name: 'stockflow_consumer_up',
      help: '1 while this instance consumes the queue.',
      labelNames: ['queue'] as const,
      registers,
    }),
    graphqlDuration: new Histogram({
      name: 'stockflow_graphql_request_duration_seconds',
      help: 'GraphQL HTTP requests, by operation type (query, mutation, subscription, other) and outcome (ok, error).',
      labelNames: ['operation', 'outcome'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    graphqlErrors: new Counter({
      name: 'stockflow_graphql_errors_total',
      help: 'Errors returned to GraphQL clients, by code.',
      labelNames: ['code'] as const,
      registers,
    }),
    /** Gauges read when Prometheus scrapes (outbox backlog, dead letters): `collect` fills them. */
    gauge(name: string, help: string, labelNames: string[], collect: (gauge: Gauge) => Promise<void>) {
      return new Gauge({
        name,
        help,
        labelNames,
        registers,
        async collect() {
          await collect(this);
        },
      });
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
