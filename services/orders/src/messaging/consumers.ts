import { InventoryAnswer, queues } from '@stockflow/contracts';
import {
  startBatchConsumer,
  type Database,
  type Logger,
  type Metrics,
  type ServiceConfig,
  type Subscription,
  type Transport,
} from '@stockflow/platform';
import { applyInventoryAnswers, type Effects } from '../db/orders.ts';

/** Consumes StockReserved / StockRejected / StockReleased in batches, one transaction each. */
export async function startOrdersConsumers(options: {
  db: Database;
  transport: Transport;
  logger: Logger;
  config: ServiceConfig;
  effects: Effects;
  waitForDatabase: () => Promise<void>;
  metrics: Metrics;
}): Promise<Subscription[]> {
  const { db, config, effects } = options;
  return [
    await startBatchConsumer({
      transport: options.transport,
      logger: options.logger,
      queue: queues.stockOrders,
      schema: InventoryAnswer,
      prefetch: config.CONSUMER_PREFETCH,
      priority: config.CONSUMER_PRIORITY,
      maxBatch: config.CONSUMER_BATCH_SIZE,
      batchesInFlight: config.CONSUMER_BATCHES_IN_FLIGHT,
      failureDelayMs: 1_000,
      maxAttempts: config.RETRY_MAX_ATTEMPTS,
      waitUntilAvailable: options.waitForDatabase,
      metrics: options.metrics,
      async handleBatch(answers, traces) {
        await db.transaction((tx) => applyInventoryAnswers(tx, answers, effects, traces));
      },
    }),
  ];
}
