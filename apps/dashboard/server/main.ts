/** `npm run start:dashboard`: the operations dashboard alone, in front of a distributed platform. */
import { z } from 'zod';
import { createAuthenticator, env, loadConfig, serviceConfigShape } from '@stockflow/platform';
import { createLogger } from '@stockflow/observability';
import { stopOnSignals } from '@stockflow/runtime';
import { startDashboard } from './dashboard-server.ts';

const DashboardConfigSchema = z.object({
  PORT: env.port(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  // The page's GraphQL goes to the gateway; the services are read for their health and metrics,
  // and driven directly by the rehearsal (the load generator).
  GATEWAY_URL: env.url(['http', 'https']).default('http://127.0.0.1:4000'),
  ORDERS_URL: env.url(['http', 'https']).default('http://127.0.0.1:8001'),
  INVENTORY_URL: env.url(['http', 'https']).default('http://127.0.0.1:8000'),
  LOG_LEVEL: env.logLevel(),
  // The services' authentication settings: the rehearsal needs an admin's token as they would.
  AUTH_JWT_SECRET: serviceConfigShape.AUTH_JWT_SECRET,
  AUTH_JWKS_URL: serviceConfigShape.AUTH_JWKS_URL,
  AUTH_JWT_ISSUER: serviceConfigShape.AUTH_JWT_ISSUER,
  AUTH_JWT_AUDIENCE: serviceConfigShape.AUTH_JWT_AUDIENCE,
  AUTH_DISABLED: serviceConfigShape.AUTH_DISABLED,
  SHUTDOWN_TIMEOUT_MS: serviceConfigShape.SHUTDOWN_TIMEOUT_MS,
});

try {
  const config = loadConfig(DashboardConfigSchema);
  const auth = createAuthenticator(config);
  const logger = createLogger({ name: 'dashboard', level: config.LOG_LEVEL });
  const dashboard = await startDashboard({
    port: config.PORT,
    host: config.HOST,
    auth,
    gatewayUrl: config.GATEWAY_URL,
    ordersUrl: config.ORDERS_URL,
    inventoryUrl: config.INVENTORY_URL,
    logger,
  });
  console.log(
    `Stockflow dashboard on http://localhost:${dashboard.port}/ (gateway ${config.GATEWAY_URL}, Order Service ${config.ORDERS_URL}, Inventory ${config.INVENTORY_URL})`,
  );
  if (auth.mode === 'disabled' && !/^(127\.|::1$|localhost$)/.test(dashboard.address))
    console.warn(`WARNING: listening on ${dashboard.address} with authentication OFF: anyone who can reach it may start a rehearsal.`);
  // A subscription it passes on ends only when its client or its service ends it: cut at the timeout.
  stopOnSignals(logger, config.SHUTDOWN_TIMEOUT_MS, () => dashboard.close(AbortSignal.timeout(config.SHUTDOWN_TIMEOUT_MS)));
} catch (error) {
  process.stderr.write(`dashboard failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
