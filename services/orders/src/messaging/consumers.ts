import { InventoryAnswer, PaymentEvent, queues } from '@stockflow/contracts';
import {
  startBatchConsumer,
  type Database,
  type Logger,
  type Metrics,
  type ServiceConfig,
  type Subscription,
  type Tracing,
  type Transport,
} from '@stockflow/platform';
import { applyInventoryAnswers, applyPayments, type Effects } from '../db/orders.ts';

/** Consumes StockReserved / StockRejected / StockReleased, and PaymentSucceeded / PaymentFailed, in batches, one transaction each. */
export async function startOrdersConsumers(options: {
  db: Database;
  transport: Transport;
  logger: Logger;
  config: ServiceConfig;
  effects: Effects;
  waitForDatabase: () => Promise<void>;
  metrics: Metrics;
  tracing?: Tracing | undefined;
}): Promise<Subscription[]> {
  const { db, config, effects } = options;
  const common = {
    transport: options.transport,
    logger: options.logger,
    prefetch: config.CONSUMER_PREFETCH,
    priority: config.CONSUMER_PRIORITY,
    maxBatch: config.CONSUMER_BATCH_SIZE,
    batchesInFlight: config.CONSUMER_BATCHES_IN_FLIGHT,
    failureDelayMs: 1_000,
    maxAttempts: config.RETRY_MAX_ATTEMPTS,
    waitUntilAvailable: options.waitForDatabase,
    metrics: options.metrics,
    tracing: options.tracing,
  };
  return [
    await startBatchConsumer({
      ...common,
      queue: queues.stockOrders,
      schema: InventoryAnswer,
      async handleBatch(answers, traces) {
        await db.transaction((tx) => applyInventoryAnswers(tx, answers, effects, traces));
      },
    }),
    await startBatchConsumer({
      ...common,
      queue: queues.paymentOrders,
      schema: PaymentEvent,
      async handleBatch(payments, traces) {
        await db.transaction((tx) => applyPayments(tx, payments, effects, traces));
      },
    }),
  ];
}
