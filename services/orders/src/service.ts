import path from 'node:path';
import { queues } from '@stockflow/contracts';
import {
  createGraphqlServer,
  graphiqlEnabled,
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
import { systemClock, type Clock } from './messaging/events.ts';

export const ordersMigrations = [platformMigrations, { scope: 'orders', dir: path.join(import.meta.dirname, 'db', 'migrations') }];

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
    async build({ db, transport, relay, waitForDatabase }) {
      const orders = ordersRepository(
        {
          ...db,
          // Every order write owes an event: publish it now rather than at the next poll.
          transaction: async (fn) => {
            const result = await db.transaction(fn);
            relay.wake();
            return result;
          },
        },
        clock,
      );
      // Status changes reach subscribers on every instance through LISTEN/NOTIFY on the shared
      // database, whichever instance made the change.
      const pubsub = createStatusPubSub();
      const unlisten = await db.listen(ORDER_STATUS_CHANNEL, (payload) => {
        try {
          pubsub.publish('statusChanged', JSON.parse(payload) as StatusChange);
        } catch (err) {
          logger.warn({ err, payload }, 'ignoring a malformed status notification');
        }
      });
      const subscriptions = await startOrdersConsumers({
        db,
        transport,
        logger,
        config,
        clock,
        waitForDatabase,
        onCommitted: () => relay.wake(),
      });
      const yoga = createGraphqlServer({
        schema: ordersSchema,
        logger,
        graphiql: graphiqlEnabled(config),
        context: () => ({ orders, pubsub, transport, consumerQueues: [queues.stockOrders] }),
      });
      return { subscriptions, http: (req, res) => void yoga.handle(req, res), beforeClose: unlisten };
    },
  });
}
