import type { ServerResponse } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * A gauge read from the database or the broker keeps its last value when that read fails: a
 * failed collect made the whole of /metrics answer 500, so every metric, the breakers' and the
 * consumers' included, went missing during exactly the outage the alerts are for.
 */
async function keepLastOnFailure(read: () => Promise<void>): Promise<void> {
  await read().catch(() => undefined);
}

/**
 * The Prometheus metrics of one service, served at /metrics. Each service has its own registry
 * (the embedded mode runs two in one process), labelled with the service's name. Names and labels
 * are what the Grafana dashboard and the alert rules under deploy/observability use.
 */
/** Request latencies in seconds, from a millisecond to a few seconds. */
export const REQUEST_SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** The services' and the gateway's GraphQL requests, one metric told apart by the `service` label. */
export const graphqlRequestDuration = (registers: Registry[]) =>
  new Histogram({
    name: 'stockflow_graphql_request_duration_seconds',
    help: 'GraphQL HTTP requests, by operation type (query, mutation, subscription, other) and outcome (ok, error).',
    labelNames: ['operation', 'outcome'] as const,
    buckets: REQUEST_SECONDS_BUCKETS,
    registers,
  });

/**
 * Times one GraphQL request until its answer is sent, labelled as `labels` say by then (the
 * operation is known only once parsed); an HTTP error status counts as an error whatever they say.
 */
export function timeGraphqlRequest(
  duration: ReturnType<typeof graphqlRequestDuration>,
  res: ServerResponse,
  labels: { readonly operation: string; readonly outcome: 'ok' | 'error' },
): void {
  const stop = duration.startTimer();
  res.once('finish', () => stop({ operation: labels.operation, outcome: res.statusCode >= 400 ? 'error' : labels.outcome }));
}

export function createMetrics(service: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  /** What the gauges read when Prometheus scrapes; the runtime fills it in once it has a database and a broker. */
  const sources: {
    outbox?: () => Promise<{ backlog: number; oldestAgeSeconds: number }>;
    deadLetters?: () => Promise<Record<string, number>>;
    queueDepths?: () => Promise<Record<string, number>>;
  } = {};

  /** A gauge per queue, read from the broker when Prometheus scrapes. */
  const byQueue = (name: string, help: string, read: () => Promise<Record<string, number>> | undefined) =>
    new Gauge({
      name,
      help,
      labelNames: ['queue'] as const,
      registers,
      async collect() {
        await keepLastOnFailure(async () => {
          for (const [queue, n] of Object.entries((await read()) ?? {})) this.set({ queue }, n);
        });
      },
    });

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
      help: 'Messages published from the outbox, by routing key and outcome (confirmed; failed: not confirmed; unroutable: confirmed but taken by no queue, kept to retry).',
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
    graphqlDuration: graphqlRequestDuration(registers),
    graphqlErrors: new Counter({
      name: 'stockflow_graphql_errors_total',
      help: 'Errors returned to GraphQL clients, by code.',
      labelNames: ['code'] as const,
      registers,
    }),
    outboxBacklog: new Gauge({
      name: 'stockflow_outbox_backlog',
      help: 'Events written to the outbox and not yet confirmed by the broker.',
      registers,
      async collect() {
        await keepLastOnFailure(async () => {
          if (sources.outbox) this.set((await sources.outbox()).backlog);
        });
      },
    }),
    outboxOldestAge: new Gauge({
      name: 'stockflow_outbox_oldest_age_seconds',
      help: 'Age of the oldest event still in the outbox (0 when it is empty).',
      registers,
      async collect() {
        await keepLastOnFailure(async () => {
          if (sources.outbox) this.set((await sources.outbox()).oldestAgeSeconds);
        });
      },
    }),
    deadLetters: byQueue(
      'stockflow_dead_letter_messages',
      'Messages parked in the dead-letter queue of each queue the service consumes.',
      () => sources.deadLetters?.(),
    ),
    queueDepth: byQueue(
      'stockflow_queue_messages_ready',
      'Messages waiting in a queue for a consumer (RabbitMQ: ready; embedded: stored, or held for a busy consumer), for the queues the service consumes or feeds for another team.',
      () => sources.queueDepths?.(),
    ),
    sources,
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** A gauge read when Prometheus scrapes, for a metric one service alone serves. */
export function scrapedGauge(metrics: Metrics, options: { name: string; help: string; read: () => Promise<number> }): void {
  new Gauge({
    name: options.name,
    help: options.help,
    registers: [metrics.registry],
    async collect() {
      await keepLastOnFailure(async () => this.set(await options.read()));
    },
  });
}

/** How many of `items` fall under each key, so a counter is incremented once per label set, not per item. */
export function tally<T>(items: readonly T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) {
    const k = key(item);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}
