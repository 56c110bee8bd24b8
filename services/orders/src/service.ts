import path from 'node:path';
import { queues } from '@stockflow/contracts';
import {
  createGraphqlServer,
  createRateLimiter,
  graphiqlEnabled,
  graphqlLimits,
  migrationSource,
  platformMigrations,
  runService,
  type Logger,
  type RunningService,
  type ServiceDependencies,
} from '@stockflow/platform';
import type { OrdersConfig } from './config.ts';
import { ORDER_STATUS_CHANNEL, ordersRepository, type StatusChange } from './db/orders.ts';
import { createStatusPubSub, ordersSchema } from './graphql/schema.ts';
import { startOrdersConsumers } from './messaging/consumers.ts';
import { registerOrdersMetrics } from './metrics.ts';
import { systemClock, type Clock } from './messaging/events.ts';

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
    async build({ db, transport, outbox, metrics, auth, waitForDatabase }) {
      const effects = { clock, outbox, logger };
      const orders = ordersRepository(db, effects);
      // Status changes reach subscribers on every instance through LISTEN/NOTIFY on the shared
      // database, whichever instance made the change.
      const pubsub = createStatusPubSub();
      const unlisten = await db.listen(ORDER_STATUS_CHANNEL, (payload) => {
        try {
          for (const change of JSON.parse(payload) as StatusChange[]) pubsub.publish('statusChanged', change);
        } catch (err) {
          logger.warn({ err, payload }, 'ignoring a malformed status notification');
        }
      });
      registerOrdersMetrics(metrics, orders);
      const subscriptions = await startOrdersConsumers({
        db,
        transport,
        logger,
        config,
        effects,
        waitForDatabase,
        metrics,
      });
      const createOrderLimiter =
        config.CREATE_ORDER_RATE_LIMIT > 0
          ? createRateLimiter({ perSecond: config.CREATE_ORDER_RATE_LIMIT, burst: config.CREATE_ORDER_RATE_BURST })
          : undefined;
      const graphql = createGraphqlServer({
        schema: ordersSchema,
        logger,
        graphiql: graphiqlEnabled(config),
        metrics,
        authenticate: (authorization) => auth.authenticate(authorization),
        limits: graphqlLimits(config),
        corsOrigins: config.CORS_ORIGINS,
        context: (access, { trace }) => ({
          access,
          trace,
          orders,
          pubsub,
          transport,
          consumerQueues: [queues.stockOrders],
          createOrderLimiter,
        }),
      });
      return { subscriptions, consumedQueues: [queues.stockOrders], http: graphql, onClose: unlisten };
    },
  });
}
