import { OrderCancelled, OrderCreated, OrderFulfilled, queues, queuesConsumedBy } from '@stockflow/contracts';
import { serviceConsumerOptions, startBatchConsumer, type OutboxWriter, type Subscription, type Transport } from '@stockflow/messaging';
import type { Database } from '@stockflow/db';
import type { Logger, Metrics, Tracing } from '@stockflow/observability';
import { systemClock, type Clock, type ServiceConfig } from '@stockflow/platform';
import { applyOrderCancelledBatch, applyOrderFulfilledBatch } from '../db/releases.ts';
import { applyOrderCreatedBatch } from '../db/reservations.ts';

/** The queues the Inventory Service consumes (and so whose dead letters it administers). */
export const INVENTORY_QUEUES = queuesConsumedBy('inventoryService');

export interface InventoryConsumerOptions {
  db: Database;
  transport: Transport;
  logger: Logger;
  config: ServiceConfig;
  clock?: Clock;
  outbox: OutboxWriter;
  metrics: Metrics;
  waitForDatabase: () => Promise<void>;
  tracing?: Tracing | undefined;
}

/** Every consumer applies a batch of deliveries in one transaction. */
export async function startInventoryConsumers(options: InventoryConsumerOptions): Promise<Subscription[]> {
  const { db, transport, logger, config } = options;
  const effects = { clock: options.clock ?? systemClock, outbox: options.outbox, metrics: options.metrics, logger };
  const common = serviceConsumerOptions(config, {
    transport,
    logger,
    waitUntilAvailable: options.waitForDatabase,
    metrics: options.metrics,
    tracing: options.tracing,
  });

  return Promise.all([
    startBatchConsumer({
      ...common,
      queue: queues.orderCreatedInventory,
      schema: OrderCreated,
      async handleBatch(events, traces) {
        await db.transaction((tx) => applyOrderCreatedBatch(tx, events, effects, traces));
      },
    }),
    startBatchConsumer({
      ...common,
      queue: queues.orderCancelledInventory,
      schema: OrderCancelled,
      async handleBatch(events, traces) {
        await db.transaction((tx) => applyOrderCancelledBatch(tx, events, effects, traces));
      },
    }),
    startBatchConsumer({
      ...common,
      queue: queues.orderFulfilledInventory,
      schema: OrderFulfilled,
      async handleBatch(events) {
        await db.transaction((tx) => applyOrderFulfilledBatch(tx, events));
      },
    }),
  ]);
}
