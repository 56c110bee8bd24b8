import path from 'node:path';
import { queues } from '@stockflow/contracts';
import { createServiceGraphqlServer } from '@stockflow/graphql';
import { migrationSource } from '@stockflow/db';
import { platformMigrations } from '@stockflow/messaging';
import { systemClock } from '@stockflow/platform';
import { runService, type RunningService, type ServiceDependencies } from '@stockflow/runtime';
import type { Logger } from '@stockflow/observability';
import type { InventoryConfig } from './config.ts';
import { catalogRepository } from './db/catalog.ts';
import { inventorySchema, levelsLoader, productLoader } from './graphql/schema.ts';
import { INVENTORY_QUEUES, startInventoryConsumers } from './messaging/consumers.ts';

export const inventoryMigrations = [platformMigrations, migrationSource('inventory', path.join(import.meta.dirname, 'db', 'migrations'))];

export function startInventoryService(config: InventoryConfig, logger: Logger, deps: ServiceDependencies = {}): Promise<RunningService> {
  return runService({
    name: 'inventory',
    config,
    logger,
    migrations: inventoryMigrations,
    queues: Object.values(queues),
    deps,
    async build({ db, transport, outbox, metrics, auth, tracing, waitForDatabase }) {
      const subscriptions = await startInventoryConsumers({
        db,
        transport,
        logger,
        config,
        waitForDatabase,
        outbox,
        metrics,
        tracing,
      });
      const catalog = catalogRepository(db, { clock: systemClock, outbox });
      const graphql = createServiceGraphqlServer({
        config,
        logger,
        auth,
        metrics,
        tracing,
        schema: inventorySchema,
        context: (access) => ({
          access,
          catalog,
          productById: productLoader(catalog),
          levelsOf: levelsLoader(catalog),
          transport,
          consumerQueues: INVENTORY_QUEUES,
        }),
      });
      return { subscriptions, consumedQueues: INVENTORY_QUEUES, http: graphql };
    },
  });
}
