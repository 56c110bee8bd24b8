import path from 'node:path';
import { queues } from '@stockflow/contracts';
import {
  AppError,
  safeUrl,
  createAmqpTransport,
  createGraphqlServer,
  createPostgresDatabase,
  migrate,
  platformMigrations,
  startHttpServer,
  startOutboxRelay,
  type Database,
  type Logger,
  type Transport,
} from '@stockflow/platform';
import { graphiqlEnabled, type InventoryConfig } from './config.ts';
import { catalogRepository } from './db/catalog.ts';
import { inventorySchema } from './graphql/schema.ts';
import { consumeOrderCreated } from './messaging/order-created.ts';

export const inventoryMigrations = [platformMigrations, { scope: 'inventory', dir: path.join(import.meta.dirname, 'db', 'migrations') }];

export interface RunningInventoryService {
  port: number;
  db: Database;
  transport: Transport;
  /** Stops taking work, lets in-flight work finish, flushes the outbox, closes connections. */
  close(): Promise<void>;
}

export interface InventoryDependencies {
  db?: Database;
  transport?: Transport;
}

export async function startInventoryService(
  config: InventoryConfig,
  logger: Logger,
  deps: InventoryDependencies = {},
): Promise<RunningInventoryService> {
  const db =
    deps.db ?? createPostgresDatabase({ url: config.DATABASE_URL, poolSize: config.DATABASE_POOL_SIZE, applicationName: 'inventory' });
  const applied = await migrate(db, inventoryMigrations).catch((error: unknown) => {
    throw new AppError('UNAVAILABLE', `cannot prepare the database at ${safeUrl(config.DATABASE_URL)}: ${(error as Error).message}`, {
      cause: error,
    });
  });
  if (applied.length > 0) logger.info({ applied }, 'migrations applied');

  const transport =
    deps.transport ??
    (await createAmqpTransport({ url: config.AMQP_URL, queues: Object.values(queues), connectionName: 'inventory', logger }));

  const relay = startOutboxRelay({
    db,
    transport,
    logger,
    batchSize: config.OUTBOX_BATCH_SIZE,
    pollIntervalMs: config.OUTBOX_POLL_MS,
    retentionMs: config.OUTBOX_RETENTION_HOURS * 3_600_000,
  });

  const subscription = await consumeOrderCreated({
    db,
    transport,
    logger,
    prefetch: config.CONSUMER_PREFETCH,
    maxBatch: config.CONSUMER_BATCH_SIZE,
    lingerMs: config.CONSUMER_LINGER_MS,
    onCommitted: () => relay.wake(),
  });

  const catalog = catalogRepository(db);
  const yoga = createGraphqlServer({ schema: inventorySchema, logger, graphiql: graphiqlEnabled(config), context: () => ({ catalog }) });
  const http = await startHttpServer({
    port: config.PORT,
    host: config.HOST,
    handler: (req, res) => void yoga.handle(req, res),
    checks: [
      { name: 'database', check: () => db.ping() },
      { name: 'broker', check: () => transport.isConnected() },
    ],
  });
  logger.info({ port: http.port, graphql: `http://localhost:${http.port}/graphql` }, 'inventory service listening');

  return {
    port: http.port,
    db,
    transport,
    async close() {
      await subscription.close();
      await http.close();
      await relay.stop();
      await relay.drain();
      await transport.close();
      await db.close();
    },
  };
}
