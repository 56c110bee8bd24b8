import path from 'node:path';
import { queues, queuesConsumedBy } from '@stockflow/contracts';
import { createServiceGraphqlServer } from '@stockflow/graphql';
import { createRateLimiter, systemClock, type Clock } from '@stockflow/platform';
import { migrationSource } from '@stockflow/db';
import { platformMigrations } from '@stockflow/messaging';
import { runService, type RunningService, type ServiceDependencies } from '@stockflow/runtime';
import type { Logger } from '@stockflow/observability';
import type { OrdersConfig } from './config.ts';
import { orderCommands } from './application/commands.ts';
import { orderReads } from './db/orders.ts';
import { paymentReads } from './db/payments.ts';
import { ORDER_STATUS_CHANNEL, type StatusChange } from './db/status-changes.ts';
import { paymentsLoader } from './graphql/payments-loader.ts';
import { ordersSchema } from './graphql/schema.ts';
import { createStatusFeed, MAX_PENDING_CHANGES } from './graphql/status-feed.ts';
import { startOrdersConsumers } from './messaging/consumers.ts';
import { registerOrdersMetrics } from './metrics.ts';
import { startHoldExpiry } from './hold-expiry.ts';

/** The queues the Order Service consumes (and so whose dead letters it administers). */
const CONSUMED_QUEUES = queuesConsumedBy('orderService');

export const ordersMigrations = [platformMigrations, migrationSource('orders', path.join(import.meta.dirname, 'db', 'migrations'))];

export function startOrdersService(
  config: OrdersConfig,
  logger: Logger,
  deps: ServiceDependencies & { clock?: Clock } = {},
): Promise<RunningService> {
  const clock = deps.clock ?? systemClock;
  return runService({
    name: 'orders',
    config,
    logger,
    migrations: ordersMigrations,
    queues: Object.values(queues),
    deps,
    async build({ db, transport, outbox, metrics, auth, tracing, waitForDatabase }) {
      const orders = { ...orderReads(db), ...paymentReads(db) };
      const ordersMetrics = registerOrdersMetrics(metrics, {
        oldestPendingAgeSeconds: () => orders.oldestPendingAgeSeconds(),
        overdueHoldSeconds: () => orders.overdueHoldSeconds(),
      });
      const effects = {
        clock,
        outbox,
        logger,
        metrics: ordersMetrics,
        payments: { holdSeconds: config.PAYMENT_HOLD_SECONDS, currency: config.CURRENCY },
      };
      const commands = orderCommands(db, effects);
      // Status changes reach subscribers on every instance through LISTEN/NOTIFY on the shared
      // database, whichever instance made the change.
      const statusFeed = createStatusFeed({
        onTooSlow: (subscription, details) => {
          ordersMetrics.subscribersTooSlow.inc({ subscription });
          logger.warn(
            { subscription, ...details, maxPendingChanges: MAX_PENDING_CHANGES },
            'subscriber too slow: its stream was ended with SUBSCRIBER_TOO_SLOW (it may subscribe again)',
          );
        },
      });
      const unlisten = await db.listen(ORDER_STATUS_CHANNEL, (payload) => {
        try {
          for (const change of JSON.parse(payload) as StatusChange[]) statusFeed.publish(change);
        } catch (err) {
          logger.warn({ err, payload }, 'ignoring a malformed status notification');
        }
      });
      const subscriptions = await startOrdersConsumers({
        db,
        transport,
        logger,
        config,
        effects,
        waitForDatabase,
        metrics,
        tracing,
      });
      // With payments off nothing ever falls due; the sweep would only poll.
      if (config.PAYMENT_HOLD_SECONDS > 0) {
        subscriptions.push(
          startHoldExpiry({ expireHolds: (limit) => commands.expireHolds(limit), intervalMs: config.PAYMENT_EXPIRY_INTERVAL_MS, logger }),
        );
      }
      const createOrderLimiter =
        config.CREATE_ORDER_RATE_LIMIT > 0
          ? createRateLimiter({ perSecond: config.CREATE_ORDER_RATE_LIMIT, burst: config.CREATE_ORDER_RATE_BURST })
          : undefined;
      const graphql = createServiceGraphqlServer({
        config,
        logger,
        auth,
        metrics,
        tracing,
        schema: ordersSchema,
        context: (access, { trace }) => ({
          access,
          trace,
          orders,
          commands,
          statusFeed,
          transport,
          consumerQueues: CONSUMED_QUEUES,
          createOrderLimiter,
          paymentsOf: paymentsLoader(orders),
        }),
      });
      return {
        subscriptions,
        consumedQueues: CONSUMED_QUEUES,
        // The refunds it asks for wait there until the payment service takes them: money owed, watched here.
        reportedQueues: [...CONSUMED_QUEUES, queues.refundRequestsPayments],
        http: graphql,
        onClose: unlisten,
      };
    },
  });
}
