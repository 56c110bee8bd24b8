import path from 'node:path';
import { z } from 'zod';
import { queues } from '@stockflow/contracts';
import { ConfigError, createAuthenticator, env, isLoopbackHost, loadConfig } from '@stockflow/platform';
import { createInProcessTransport } from '@stockflow/messaging';
import { createLogger, type Logger } from '@stockflow/observability';
import { createPgliteDatabase } from '@stockflow/db';
import type { RunningService, ServiceDependencies } from '@stockflow/runtime';
import { startDashboard, type RunningDashboard } from '@stockflow/dashboard';
import { loadGatewayConfig, startGateway, type RunningGateway } from '@stockflow/gateway';
import { loadInventoryConfig, SAMPLE_CATALOG, seedCatalog, startInventoryService } from '@stockflow/inventory';
import { loadOrdersConfig, startOrdersService } from '@stockflow/orders';

/** Options of `npm start`; each service's own options (docs/configuration.md) apply to both. */
export const PlatformConfigSchema = z.object({
  LOG_LEVEL: env.logLevel(),
  // Loopback unless told: the embedded mode runs without authentication unless it is configured.
  // Both services, the dashboard and the gateway listen on it (a service run alone keeps its own default).
  HOST: z.string().min(1).default('127.0.0.1'),
  DATA_DIR: z.string().min(1).default('.data'),
  INVENTORY_PORT: env.port(8000),
  ORDERS_PORT: env.port(8001),
  INVENTORY_DATABASE_URL: env.url(['postgres', 'postgresql']).optional(),
  ORDERS_DATABASE_URL: env.url(['postgres', 'postgresql']).optional(),
  AMQP_URL: env.amqpUrls().optional(),
  SEED_SAMPLE_CATALOG: z.enum(['true', 'false']).default('true'),
  DASHBOARD_PORT: env.port(8080),
  GATEWAY_PORT: env.port(4000),
});

export type PlatformConfig = z.infer<typeof PlatformConfigSchema>;

export interface RunningPlatform {
  mode: 'embedded' | 'distributed';
  /** The interface every listener is bound to (HOST). */
  host: string;
  inventory: RunningService;
  orders: RunningService;
  dashboard: RunningDashboard;
  /** One GraphQL endpoint for both services (Hive Gateway over the supergraph). */
  gateway: RunningGateway;
  /** SHUTDOWN_TIMEOUT_MS, as both services read it. */
  shutdownTimeoutMs: number;
  /** For what concerns the whole platform (its shutdown). */
  logger: Logger;
  /**
   * Stops taking requests everywhere, lets what is under way finish (until `giveUp` aborts:
   * SHUTDOWN_TIMEOUT_MS from now by default), then closes the services and their stores.
   */
  close(giveUp?: AbortSignal): Promise<void>;
}

/** What `npm start` warns of: listening beyond loopback while every request has full access. */
export function exposureWarning(platform: Pick<RunningPlatform, 'host' | 'inventory' | 'orders'>): string | undefined {
  if (isLoopbackHost(platform.host) || (platform.inventory.auth === 'jwt' && platform.orders.auth === 'jwt')) return undefined;
  return `listening on ${platform.host} with authentication OFF: anyone who can reach this machine on these ports can change stock, cancel orders and replay dead letters. Set AUTH_JWT_SECRET (README, "Authentication"), or leave HOST unset to listen on loopback only.`;
}

/**
 * Runs both services in this process. With nothing configured: PostgreSQL in process (PGlite,
 * one database per service, kept in DATA_DIR) and events through the outbox over an in-process
 * transport, whose parked and delayed messages are kept in a third one. With AMQP_URL and both database URLs: the same code on RabbitMQ and PostgreSQL.
 */
export async function startPlatform(source: NodeJS.ProcessEnv = process.env): Promise<RunningPlatform> {
  const config = loadConfig(PlatformConfigSchema, source);
  const external = [config.AMQP_URL, config.INVENTORY_DATABASE_URL, config.ORDERS_DATABASE_URL];
  if (external.some(Boolean) && !external.every(Boolean)) {
    throw new ConfigError(
      'Invalid configuration:\n  set all of AMQP_URL, INVENTORY_DATABASE_URL and ORDERS_DATABASE_URL to run on RabbitMQ and PostgreSQL, or none of them for the embedded mode',
    );
  }
  const mode = external.every(Boolean) ? 'distributed' : 'embedded';
  const serviceEnv = (port: number, databaseUrl: string | undefined) => ({
    ...source,
    HOST: config.HOST,
    PORT: String(port),
    DATABASE_URL: databaseUrl,
    AMQP_URL: config.AMQP_URL,
  });
  const inventoryConfig = loadInventoryConfig(serviceEnv(config.INVENTORY_PORT, config.INVENTORY_DATABASE_URL));
  const ordersConfig = loadOrdersConfig(serviceEnv(config.ORDERS_PORT, config.ORDERS_DATABASE_URL));

  const owned: { close(): Promise<void> }[] = [];
  let deps: { inventory: ServiceDependencies; orders: ServiceDependencies } = { inventory: {}, orders: {} };
  if (mode === 'embedded') {
    const logger = createLogger({ name: 'embedded', level: config.LOG_LEVEL });
    // The broker's own database: what it holds (parked and delayed messages) outlives a restart
    // and is no service's data.
    const brokerDb = await createPgliteDatabase(path.resolve(config.DATA_DIR, 'broker'));
    const transport = await createInProcessTransport({ queues: Object.values(queues), logger, store: brokerDb });
    const inventoryDb = await createPgliteDatabase(path.resolve(config.DATA_DIR, 'inventory'));
    const ordersDb = await createPgliteDatabase(path.resolve(config.DATA_DIR, 'orders'));
    // The transport first, so that nothing it still writes finds its store closed.
    owned.push(transport, brokerDb, inventoryDb, ordersDb);
    // Only the embedded platform may run without authentication configured (it says so).
    deps = { inventory: { db: inventoryDb, transport, authOptional: true }, orders: { db: ordersDb, transport, authOptional: true } };
  }

  const inventory = await startInventoryService(
    inventoryConfig,
    createLogger({ name: 'inventory', level: config.LOG_LEVEL }),
    deps.inventory,
  );
  const orders = await startOrdersService(ordersConfig, createLogger({ name: 'orders', level: config.LOG_LEVEL }), deps.orders);
  if (config.SEED_SAMPLE_CATALOG === 'true') {
    const { rows } = await inventory.db.query<{ n: number }>('SELECT count(*)::int AS n FROM products');
    if (rows[0]?.n === 0) await seedCatalog(inventory.db, SAMPLE_CATALOG);
  }

  // Where the services are reached from here: the interface they are bound to, or loopback when
  // they are bound to every interface.
  const reachable =
    config.HOST === '0.0.0.0' || config.HOST === '::' ? '127.0.0.1' : config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST;
  const gateway = await startGateway(
    loadGatewayConfig({
      ...source,
      HOST: config.HOST,
      PORT: String(config.GATEWAY_PORT),
      ORDERS_URL: `http://${reachable}:${orders.port}/graphql`,
      INVENTORY_URL: `http://${reachable}:${inventory.port}/graphql`,
    }),
    createLogger({ name: 'gateway', level: config.LOG_LEVEL }),
    { authOptional: mode === 'embedded' },
  );
  const dashboard = await startDashboard({
    port: config.DASHBOARD_PORT,
    host: config.HOST,
    // The services' own settings, so the rehearsal asks for the token they would.
    auth: createAuthenticator(inventoryConfig, { optional: mode === 'embedded' }),
    gatewayUrl: `http://${reachable}:${gateway.port}`,
    ordersUrl: `http://${reachable}:${orders.port}`,
    inventoryUrl: `http://${reachable}:${inventory.port}`,
    logger: createLogger({ name: 'dashboard', level: config.LOG_LEVEL }),
  });
  return {
    mode,
    host: config.HOST,
    inventory,
    orders,
    dashboard,
    gateway,
    shutdownTimeoutMs: ordersConfig.SHUTDOWN_TIMEOUT_MS,
    logger: createLogger({ name: 'stockflow', level: config.LOG_LEVEL }),
    async close(giveUp = AbortSignal.timeout(ordersConfig.SHUTDOWN_TIMEOUT_MS)) {
      // Front to back, so that what one layer accepted still finds the next one running: the
      // dashboard (its subscription streams cut), then the gateway, then the Order Service, whose
      // OrderCreated published on the way out still reaches a running Inventory Service, then that
      // one. One deadline for all their work under way, so the whole stays within twice
      // SHUTDOWN_TIMEOUT_MS (the flush and closing after it get as long again).
      await dashboard.close(giveUp);
      await gateway.close(giveUp);
      await orders.close(giveUp);
      await inventory.close(giveUp);
      for (const resource of owned) await resource.close();
    },
  };
}
