import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { asyncApiDocument, type QueueSpec } from '@stockflow/contracts';
import {
  createAuthenticator,
  ConfigError,
  AppError,
  CircuitBreaker,
  isDatabaseOutage,
  startHttpServer,
  type Authenticator,
  type ServiceConfig,
} from '@stockflow/platform';
import { safeUrl, createLogger, createMetrics, startTracing, type Logger, type Metrics, type Tracing } from '@stockflow/observability';
import { guardDatabase, createPostgresDatabase, migrate, type MigrationSource, type Database } from '@stockflow/db';
import {
  createAmqpTransport,
  startOutbox,
  UnroutableError,
  untilAborted,
  type Outbox,
  type Subscription,
  type Transport,
} from '@stockflow/messaging';

export interface ServiceDependencies {
  /** Given by the embedded runner (PGlite); otherwise a pool on DATABASE_URL. */
  db?: Database;
  /** Given by the embedded runner (in process); otherwise RabbitMQ at AMQP_URL. */
  transport?: Transport;
  /** The embedded runner may run without authentication when none is configured. */
  authOptional?: boolean;
}

export interface ServiceParts {
  subscriptions: Subscription[];
  /** The queues the service consumes: /metrics reports their dead-letter queues' depth. */
  consumedQueues: QueueSpec[];
  /**
   * The queues whose depth /metrics reports: those it consumes, unless said otherwise (a queue it
   * feeds for another team's service, which no Stockflow service would report).
   */
  reportedQueues?: QueueSpec[];
  http(req: IncomingMessage, res: ServerResponse): void;
  /**
   * Ends what the service opened for itself (e.g. its LISTEN connection) when it stops, alongside
   * the HTTP server and the consumers; no longer waited for after SHUTDOWN_TIMEOUT_MS.
   */
  onClose?: () => Promise<void>;
}

export interface ServiceRuntime {
  /** The service's database, behind its circuit breaker. */
  db: Database;
  transport: Transport;
  /** Where the service writes the events it owes, in the transaction of the change. */
  outbox: Outbox;
  /** Resolves when the database's circuit breaker lets calls through again. */
  waitForDatabase: () => Promise<void>;
  metrics: Metrics;
  /** Checks the bearer token of each GraphQL request. */
  auth: Authenticator;
  /** OpenTelemetry tracing, when an OTLP endpoint is configured. */
  tracing: Tracing | undefined;
}

export interface RunningService {
  name: string;
  port: number;
  /** The address its HTTP server is bound to, e.g. 127.0.0.1 or 0.0.0.0. */
  address: string;
  /** 'jwt' when GraphQL requests need a token, 'disabled' when they all have full access. */
  auth: Authenticator['mode'];
  db: Database;
  transport: Transport;
  outbox: Outbox;
  /**
   * Stops taking work, lets in-flight requests and batches finish (until `giveUp` aborts:
   * SHUTDOWN_TIMEOUT_MS from now by default), flushes the outbox, closes connections.
   */
  close(giveUp?: AbortSignal): Promise<void>;
}

/**
 * What every service does around its own logic: connect, migrate, declare the topology, relay
 * the outbox, serve HTTP with /health and /ready, and shut down in the right order.
 */
export async function runService(options: {
  name: string;
  config: ServiceConfig;
  logger: Logger;
  migrations: MigrationSource[];
  queues: QueueSpec[];
  deps: ServiceDependencies;
  build(runtime: ServiceRuntime): Promise<ServiceParts>;
}): Promise<RunningService> {
  const { config, logger, name } = options;
  const auth = createAuthenticator(config, { optional: options.deps.authOptional });
  if (auth.mode === 'disabled') {
    if (config.AUTH_DISABLED === 'true') {
      logger.warn('AUTHENTICATION IS DISABLED (AUTH_DISABLED=true): every GraphQL request has full access, admin included');
    } else {
      logger.info('authentication is off (embedded mode): set AUTH_JWT_SECRET to require tokens');
    }
  }
  const metrics = createMetrics(name);
  // First: a setting it refuses (an OTLP protocol it cannot speak) stops the start before any connection is open.
  const tracing = await startTracing(name, logger);
  const breaker = (dependency: string, isOutage: (error: unknown) => boolean) =>
    new CircuitBreaker({
      name: dependency,
      failureThreshold: config.BREAKER_FAILURE_THRESHOLD,
      openMs: config.BREAKER_OPEN_MS,
      maxOpenMs: config.BREAKER_MAX_OPEN_MS,
      isOutage,
      logger,
    });
  const databaseBreaker = breaker('database', isDatabaseOutage);
  // A publish to a declared exchange fails only when the broker or the channel is down, or when
  // no queue takes the message: that one is a missing queue, not an outage, and the publishes
  // that do route must go on.
  const brokerBreaker = breaker('broker', (error) => !(error instanceof UnroutableError));
  const rawDb =
    options.deps.db ??
    createPostgresDatabase({
      url: required(config.DATABASE_URL, 'DATABASE_URL'),
      poolSize: config.DATABASE_POOL_SIZE,
      applicationName: name,
    });
  const db = guardDatabase(rawDb, databaseBreaker);
  const applied = await migrate(rawDb, options.migrations, ({ migration, attempt, code, error }) =>
    logger.warn({ migration, attempt, code, err: error }, 'a migration gave way to live traffic; trying it again'),
  ).catch((error: unknown) => {
    throw new AppError(
      'UNAVAILABLE',
      `cannot prepare the database${config.DATABASE_URL ? ` at ${safeUrl(config.DATABASE_URL)}` : ''}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  });
  if (applied.length > 0) logger.info({ applied }, 'migrations applied');

  const transport =
    options.deps.transport ??
    (await createAmqpTransport({
      url: required(config.AMQP_URL, 'AMQP_URL'),
      queues: options.queues,
      queueType: config.AMQP_QUEUE_TYPE,
      connectionName: name,
      logger,
      startWithoutBroker: true,
    }));

  const outbox = startOutbox({
    db,
    transport,
    logger,
    batchSize: config.OUTBOX_BATCH_SIZE,
    pollIntervalMs: config.OUTBOX_POLL_MS,
    breaker: brokerBreaker,
    metrics,
    tracing,
  });

  const parts = await options.build({
    db,
    transport,
    outbox,
    metrics,
    auth,
    tracing,
    waitForDatabase: () => databaseBreaker.waitUntilCallable(),
  });
  metrics.sources.outbox = async () => {
    const { rows } = await rawDb.query<{ backlog: number; age: number | null }>(
      `SELECT count(*)::int AS backlog, extract(epoch FROM now() - min(created_at))::float8 AS age
       FROM outbox WHERE id <> ALL($1::bigint[])`,
      [outbox.publishedNotDeleted()],
    );
    return { backlog: rows[0]?.backlog ?? 0, oldestAgeSeconds: rows[0]?.age ?? 0 };
  };
  metrics.sources.deadLetters = async () =>
    Object.fromEntries(await Promise.all(parts.consumedQueues.map(async (q) => [q.queue, await transport.deadLetters.count(q)] as const)));
  metrics.sources.queueDepths = async () =>
    Object.fromEntries(
      await Promise.all((parts.reportedQueues ?? parts.consumedQueues).map(async (q) => [q.queue, await transport.depth(q)] as const)),
    );
  const http = await startHttpServer({
    port: config.PORT,
    host: config.HOST,
    handler: (req, res) => parts.http(req, res),
    metrics: metrics.registry,
    // Not a check: a service without authentication is ready, but says so wherever it is asked.
    info: { auth: auth.mode === 'jwt' ? 'jwt' : 'DISABLED: every request has full access' },
    refuseRebindableHosts: auth.mode === 'disabled',
    asyncApi: asyncApiDocument(),
    // Without the database a service can do nothing. Without the broker both still serve their
    // APIs (the outbox keeps what they owe until it is back): above all the Order Service keeps
    // accepting orders, which is what it promises during a broker outage.
    checks: [
      { name: 'database', check: () => rawDb.ping() },
      { name: 'database circuit', check: () => databaseBreaker.state !== 'open' },
      { name: 'broker', check: () => transport.isConnected(), optional: true },
      { name: 'broker circuit', check: () => brokerBreaker.state !== 'open', optional: true },
    ],
  });
  logger.info(
    { port: http.port, graphql: `http://localhost:${http.port}/graphql`, consumerPriority: config.CONSUMER_PRIORITY },
    `${name} service listening`,
  );

  return {
    name,
    port: http.port,
    address: (http.server.address() as AddressInfo).address,
    auth: auth.mode,
    db: rawDb,
    transport,
    outbox,
    async close(giveUp = AbortSignal.timeout(config.SHUTDOWN_TIMEOUT_MS)) {
      // Nothing new is taken from here on. What is under way (requests, consumer batches) gets
      // until `giveUp` to finish; then the requests' connections are cut and the batches go back
      // to their queues unacknowledged, for another instance to apply.
      await Promise.all([
        http.close(giveUp),
        ...parts.subscriptions.map((s) => s.close(giveUp)),
        // Not before the server stops listening: a database that stops answering can hold it.
        untilAborted(parts.onClose?.(), giveUp),
      ]);
      if (giveUp.aborted) logger.warn({ timeoutMs: config.SHUTDOWN_TIMEOUT_MS }, 'work still under way at the shutdown timeout was cut');
      await outbox.stop();
      await outbox.drain();
      if (!options.deps.transport) await transport.close();
      if (!options.deps.db) await rawDb.close();
      // Last, so the spans of the drain are exported too; an unreachable collector holds it up to
      // OTEL_BSP_EXPORT_TIMEOUT, within the hard exit of stopOnSignals.
      await tracing?.shutdown();
    },
  };
}

function required(value: string | undefined, variable: string): string {
  if (!value) throw new ConfigError(`Invalid configuration:\n  ${variable} (unset): is required when the service runs on its own`);
  return value;
}

/**
 * A graceful stop on SIGTERM or SIGINT: `close`, then exit code 0; 1 when it fails or is not done
 * within twice `timeoutMs` (the timeout for the work under way, as long again to flush the outbox
 * and close connections).
 */
export function stopOnSignals(logger: Logger, timeoutMs: number, close: () => Promise<void>): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, timeoutMs }, 'shutting down');
    // A database or broker that stops answering mid-shutdown must not keep the process alive.
    setTimeout(() => {
      logger.error({ timeoutMs: 2 * timeoutMs }, 'shutdown did not finish in time; exiting');
      process.exit(1);
    }, 2 * timeoutMs);
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/**
 * The entry point of a service running alone: configuration from the environment, a clear
 * message and exit code 1 when it cannot start, and a graceful stop on SIGTERM or SIGINT
 * (stopOnSignals, with SHUTDOWN_TIMEOUT_MS).
 */
export function runMain<Config extends ServiceConfig>(
  name: string,
  load: () => Config,
  start: (config: Config, logger: Logger) => Promise<RunningService>,
): void {
  const boot = async () => {
    const config = load();
    const logger = createLogger({ name, level: config.LOG_LEVEL });
    const service = await start(config, logger);
    stopOnSignals(logger, config.SHUTDOWN_TIMEOUT_MS, () => service.close());
  };
  boot().catch((error: unknown) => {
    process.stderr.write(`${name} service failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
