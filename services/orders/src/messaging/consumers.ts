import { InventoryAnswer, PaymentEvent, queues } from '@stockflow/contracts';
import {
  serviceConsumerOptions,
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
  const common = serviceConsumerOptions(config, {
    transport: options.transport,
    logger: options.logger,
    waitUntilAvailable: options.waitForDatabase,
    metrics: options.metrics,
    tracing: options.tracing,
  });

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
