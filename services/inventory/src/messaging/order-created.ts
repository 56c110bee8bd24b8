import { randomUUID } from 'node:crypto';
import { OrderCreated, queues } from '@stockflow/contracts';
import { startBatchConsumer, type Database, type Logger, type Subscription, type Transport } from '@stockflow/platform';
import { applyOrderCreatedBatch, type Clock } from '../db/reservations.ts';

export const systemClock: Clock = { now: () => new Date(), newId: () => randomUUID() };

export interface OrderCreatedConsumerOptions {
  db: Database;
  transport: Transport;
  logger: Logger;
  clock?: Clock;
  prefetch: number;
  maxBatch: number;
  lingerMs: number;
  /** Called after each commit, so the outbox relay publishes the answers at once. */
  onCommitted(): void;
}

/** Reserves stock for OrderCreated; the answers leave through the outbox. */
export function consumeOrderCreated(options: OrderCreatedConsumerOptions): Promise<Subscription> {
  const clock = options.clock ?? systemClock;
  return startBatchConsumer({
    transport: options.transport,
    queue: queues.orderCreatedInventory,
    schema: OrderCreated,
    logger: options.logger,
    prefetch: options.prefetch,
    maxBatch: options.maxBatch,
    lingerMs: options.lingerMs,
    failureDelayMs: 1_000,
    async handleBatch(events) {
      await options.db.transaction((tx) => applyOrderCreatedBatch(tx, events, clock));
      options.onCommitted();
    },
  });
}
