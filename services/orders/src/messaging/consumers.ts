import { InventoryAnswer, PaymentEvent, queues } from '@stockflow/contracts';
import { parkedPayment, serviceConsumerOptions, startBatchConsumer, type Subscription, type Transport } from '@stockflow/messaging';
import type { Database } from '@stockflow/db';
import type { Logger, Metrics, Tracing } from '@stockflow/observability';
import type { ServiceConfig } from '@stockflow/platform';
import { applyInventoryAnswers } from '../application/answer-inventory.ts';
import type { Effects } from '../application/effects.ts';
import { applyPayments } from '../application/pay-orders.ts';

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
      // A payment parked is money the payment service may hold with no record here: counted apart.
      onParked(message) {
        const payment = parkedPayment(message.body);
        const money = payment.moneyTaken === null ? 'unknown' : payment.moneyTaken ? 'taken' : 'none';
        effects.metrics?.paymentsParked.inc({ money });
        if (payment.moneyTaken && payment.amountCents !== null && payment.amountCents > 0) {
          // A label only for what reads as a currency code: a broken body must not mint label values.
          const currency = /^[A-Za-z]{3}$/.test(payment.currency ?? '') ? (payment.currency as string).toUpperCase() : 'unknown';
          effects.metrics?.paymentsParkedCents.inc({ currency }, payment.amountCents);
        }
      },
    }),
  ];
}
