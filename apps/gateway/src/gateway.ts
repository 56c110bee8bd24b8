import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { createGatewayRuntime } from '@graphql-hive/gateway-runtime';
import { buildHTTPExecutor, type AsyncFetchFn } from '@graphql-tools/executor-http';
import { transformSupergraphToPublicSchema } from '@theguild/federation-composition';
import { buildASTSchema, GraphQLError, OperationTypeNode, parse } from 'graphql';
import { z } from 'zod';
import {
  admitGraphqlRequest,
  answerUnexpectedFailure,
  bodyParams,
  corsResponder,
  costLimit,
  documentPreparer,
  limitsPlugin,
  maskError,
  plainRequest,
  renderGraphiQL,
  sendGraphqlAnswer,
} from '@stockflow/graphql';
import {
  createAuthenticator,
  DRAINING_HEADER,
  env,
  graphiqlEnabled,
  graphqlLimits,
  loadConfig,
  serviceConfigShape,
  startHttpServer,
} from '@stockflow/platform';
import { startTracing, TRACEPARENT_HEADER, type Logger } from '@stockflow/observability';
import { DEFAULT_SUBGRAPH_URLS } from '@stockflow/supergraph';
import { abandoned, connectionLost, failureError, failureLog, failureOfError, failureOfStatus } from './failures.ts';
import { subgraphForwarder } from './forward.ts';
import { createGatewayMetrics, gatewayObservability } from './observability.ts';
import { subgraphRouter } from './route.ts';

/** Beside the bundle (npm run build copies it there), else the one committed in apps/gateway. */
const bundledSupergraph = path.join(import.meta.dirname, 'supergraph.graphql');
const committedSupergraph = existsSync(bundledSupergraph) ? bundledSupergraph : path.join(import.meta.dirname, '..', 'supergraph.graphql');

const { NODE_ENV, LOG_LEVEL, HOST, GRAPHIQL, SHUTDOWN_TIMEOUT_MS, CORS_ORIGINS } = serviceConfigShape;
const { GRAPHQL_INTROSPECTION, GRAPHQL_MAX_DEPTH, GRAPHQL_MAX_ALIASES, GRAPHQL_MAX_TOKENS, GRAPHQL_MAX_COST } = serviceConfigShape;
const { AUTH_JWT_SECRET, AUTH_JWKS_URL, AUTH_JWT_ISSUER, AUTH_JWT_AUDIENCE, AUTH_DISABLED } = serviceConfigShape;

/** Every option of the gateway; the table in docs/configuration.md mirrors this. */
export const GatewayConfigSchema = z.object({
  NODE_ENV,
  LOG_LEVEL,
  HOST,
  PORT: env.port(4000),
  /** The Order and Inventory Services' GraphQL endpoints (the subgraphs). */
  ORDERS_URL: env.url(['http', 'https']).default(DEFAULT_SUBGRAPH_URLS.orders),
  INVENTORY_URL: env.url(['http', 'https']).default(DEFAULT_SUBGRAPH_URLS.inventory),
  /** The composed supergraph (`npm run supergraph`); the one committed next to this app by default. */
  SUPERGRAPH_PATH: z.string().min(1).default(committedSupergraph),
  GRAPHIQL,
  SHUTDOWN_TIMEOUT_MS,
  CORS_ORIGINS,
  // The same settings as the services': the gateway refuses a request they would refuse, before planning it.
  AUTH_JWT_SECRET,
  AUTH_JWKS_URL,
  AUTH_JWT_ISSUER,
  AUTH_JWT_AUDIENCE,
  AUTH_DISABLED,
  // The services' limits on a document, checked on the whole operation before it is planned.
  GRAPHQL_INTROSPECTION,
  GRAPHQL_MAX_DEPTH,
  GRAPHQL_MAX_ALIASES,
  GRAPHQL_MAX_TOKENS,
  GRAPHQL_MAX_COST,
});

export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;

export const loadGatewayConfig = (source: NodeJS.ProcessEnv = process.env) => loadConfig(GatewayConfigSchema, source);

export interface RunningGateway {
  port: number;
  address: string;
  auth: 'jwt' | 'disabled';
  /**
   * Stops listening and resolves once the requests under way are answered (subscriptions are cut);
   * what is still open when `giveUp` aborts (SHUTDOWN_TIMEOUT_MS by default) is cut.
   */
  close(giveUp?: AbortSignal): Promise<void>;
}

/** An error as the runtime hands it over, read by its shape: the runtime's errors wrap one another through `originalError`. */
interface RuntimeError {
  message: string;
  path?: readonly (string | number)[];
  extensions?: Record<string, unknown>;
  originalError?: unknown;
}

/** The runtime's own coded error about a request to a service, and what it carries: the request, the service's answer, its name. */
interface SubgraphRequestError extends RuntimeError {
  extensions: {
    code?: unknown;
    serviceName?: unknown;
    request?: unknown;
    response?: { status?: unknown; headers?: Record<string, string> };
  };
}

/**
 * The error the runtime's HTTP executor made about a request to a service (it could not be sent, or
 * its answer could not be read), found anywhere in `error`'s chain: it carries that request (the
 * `_entities` query and its representations) and the answer, and names the service's address.
 */
function subgraphRequestError(error: unknown): SubgraphRequestError | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as RuntimeError & { errors?: unknown };
  if (e.extensions && ('request' in e.extensions || 'response' in e.extensions)) return e as SubgraphRequestError;
  // Node tries each address a name (localhost) resolves to: the connection's failures come as one AggregateError.
  if (Array.isArray(e.errors)) {
    for (const inner of e.errors as unknown[]) {
      const found = subgraphRequestError(inner);
      if (found) return found;
    }
  }
  return subgraphRequestError(e.originalError);
}

/** The first error in `error`'s chain, what the others wrap: shared by each field one failed request was for. */
function innermost(error: RuntimeError): RuntimeError {
  let root = error;
  while (typeof root.originalError === 'object' && root.originalError !== null) root = root.originalError as RuntimeError;
  return root;
}

/** What an error the runtime made arose from (a SyntaxError, undici's TypeError), as an Error that is not a GraphQLError: maskError passes those on. */
const rootCause = (root: RuntimeError): Error => (root instanceof Error && !('extensions' in root) ? root : new Error(root.message));

/**
 * The service whose answer `error` came in, by the name Hive's subgraph-error plugin gives every
 * error of a service's answer (a service's own error, or one its connection ended in).
 */
const serviceOf = (error: RuntimeError): string | undefined =>
  typeof error.extensions?.serviceName === 'string' ? error.extensions.serviceName : undefined;

/** Whether a subgraph's process answers its liveness probe (`/health` next to its `/graphql`). */
async function healthy(graphqlUrl: string): Promise<boolean> {
  try {
    // Under the kubelet's 5 s for /ready: a service at full CPU accepts a new connection late, and busy is not down.
    const res = await fetch(new URL('/health', graphqlUrl), { signal: AbortSignal.timeout(4_000) });
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * One GraphQL endpoint for both services: Hive Gateway's runtime over the committed supergraph,
 * sending each part of an operation to the service that owns it (an order's lines to the Order
 * Service, their products to the Inventory Service through `_entities`).
 *
 * The services keep every rule: the gateway forwards the Authorization header (and traceparent),
 * so they check the token, a customer's scope and their limits (depth, aliases, cost, body size)
 * on what they are asked. The gateway applies the same tokens, depth, aliases, introspection and
 * cost limits to the whole operation first (each service sees only its share, so an operation
 * whose shares each pass could ask for more than any one may). The gateway checks the token too,
 * so a request without one is refused before it is planned, and bodies over
 * MAX_REQUEST_BODY_BYTES, like the services. Subscriptions go to the Order Service over SSE and
 * come back over SSE.
 *
 * It serves its own /metrics (requests by operation and outcome, subgraph requests by subgraph)
 * and, with an OTLP endpoint set, traces as the services do: a SERVER span per request, a CLIENT
 * span per subgraph request, whose context the service continues.
 */
export async function startGateway(
  config: GatewayConfig,
  logger: Logger,
  options: { authOptional?: boolean } = {},
): Promise<RunningGateway> {
  const auth = createAuthenticator(config, { optional: options.authOptional });
  const supergraph = await readFile(config.SUPERGRAPH_PATH, 'utf8');
  const supergraphDocument = parse(supergraph);
  const tracing = await startTracing('gateway', logger);
  const services = { orders: config.ORDERS_URL, inventory: config.INVENTORY_URL };
  const metrics = createGatewayMetrics(Object.keys(services));
  const observe = gatewayObservability({ tracing, metrics });
  const graphiql = graphiqlEnabled(config);
  const limits = graphqlLimits(config);
  const mask = maskError(logger);
  // What the runtime answers: maskError would pass the executor's own coded errors on as they
  // are, with the service's address and the gateway's request to it, and a broken connection's
  // raw message. A service that failed (failures.ts: could not be reached, did not answer, or cut
  // a subscription's stream) is answered as a forwarded request's is, and logged as a warning
  // with its cause; anything else of the kind is unexpected. A service's own errors are answered
  // as it sent them, as a forwarded request's are (without the name Hive's plugin adds).
  // One failed request to a service comes back once for each field it was for (each line of an
  // order): the first is answered (and logged), the others get the same answer at their own path.
  const answered = new WeakMap<object, GraphQLError>();
  /** `failed` is the executor's error about its `request` to a service, or (no request) one of a connection lost under a stream. */
  const answerFailed = (
    failed: RuntimeError,
    request: SubgraphRequestError | undefined,
    root: RuntimeError,
    path: RuntimeError['path'],
  ): GraphQLError => {
    const cause = rootCause(root);
    const response = request?.extensions.response;
    // The answer's headers are read only here: executor-http keeps them behind a getter.
    const status = response?.status;
    const failure = request
      ? (failureOfStatus(status, response?.headers?.[DRAINING_HEADER] !== undefined) ??
        (request.extensions.code === 'SUBREQUEST_HTTP_ERROR' ? failureOfError(failed) : undefined))
      : 'lost';
    if (!failure) return mask(new GraphQLError(failed.message, { path, originalError: cause })) as GraphQLError;
    const subgraph = serviceOf(failed);
    // Given up because its client left: nobody reads the answer, and the service did nothing wrong.
    if (!abandoned(failed)) {
      logger.warn({ err: cause, subgraph, path: path?.join('.'), status }, failureLog(failure));
      if (failure === 'lost' && subgraph) observe.cut(subgraph);
    }
    const { message, extensions } = failureError(failure, subgraph);
    return new GraphQLError(message, { path, extensions });
  };
  const maskAtRuntime = (error: unknown): Error => {
    const e = error as RuntimeError;
    const request = subgraphRequestError(error);
    const failed = request ?? (serviceOf(e) && connectionLost(e) ? e : undefined);
    if (!failed) {
      const masked = mask(error);
      if (!(masked instanceof GraphQLError) || masked.extensions.serviceName === undefined) return masked;
      const extensions = { ...masked.extensions };
      delete extensions.serviceName;
      return new GraphQLError(masked.message, { nodes: masked.nodes, path: masked.path, extensions });
    }
    const path = e.path;
    const root = innermost(failed);
    const first = answered.get(root);
    if (first) return new GraphQLError(first.message, { path, extensions: first.extensions });
    const answer = answerFailed(failed, request, root, path);
    answered.set(root, answer);
    return answer;
  };

  // The cost counted on the supergraph, which keeps each list's most (@listSize): the services count their shares again.
  const tooCostly = costLimit(buildASTSchema(supergraphDocument, { assumeValidSDL: true }), limits.maxCost);
  // Hive's runtime disposes itself on SIGTERM and SIGINT, at once (its own listener; it cannot be
  // turned off), and disposing an HTTP executor aborts its requests under way. The runtime gets
  // executors it cannot dispose; `close` disposes them once what the gateway accepted is answered.
  const executors: ReturnType<typeof buildHTTPExecutor>[] = [];
  const runtime = createGatewayRuntime({
    supergraph,
    transportEntries: { orders: { location: config.ORDERS_URL }, inventory: { location: config.INVENTORY_URL } },
    // The subgraphs are plain GraphQL over HTTP; subscriptions over SSE (executor-http's own).
    transports: {
      http: {
        // The gateway's fetch, which carries its hooks (the headers it forwards).
        getSubgraphExecutor: ({ transportEntry, fetch }) => {
          const executor = buildHTTPExecutor({
            endpoint: transportEntry.location ?? '',
            fetch: observe.fetch(transportEntry.subgraph, (fetch ?? globalThis.fetch) as AsyncFetchFn),
          });
          executors.push(executor);
          return (request) => executor(request);
        },
      },
    },
    propagateHeaders: {
      fromClientToSubgraphs: ({ request, context }) => ({
        authorization: request.headers.get('authorization'),
        [TRACEPARENT_HEADER]: observe.traceparent(context, request.headers.get(TRACEPARENT_HEADER)),
      }),
    },
    // A client that leaves ends its requests and subscriptions to the services too.
    upstreamCancellation: true,
    graphiql,
    renderGraphiQL,
    landingPage: false,
    logging: false,
    // Worded as the services word them, and an unexpected one logged with its cause (Yoga's own mask, with logging off, kept silent).
    maskedErrors: { maskError: maskAtRuntime },
    plugins: () => [observe.plugin(), limitsPlugin(limits, tooCostly)],
    // Answered in `handler`, as the services answer it (Yoga's would allow credentials and any method).
    cors: false,
  });
  const cors = corsResponder(config.CORS_ORIGINS);
  // What the clients may ask (the supergraph without what is @inaccessible or federation's own).
  const prepare = documentPreparer(buildASTSchema(transformSupergraphToPublicSchema(supergraphDocument)), limits);
  const route = subgraphRouter(supergraphDocument);
  const forwarder = subgraphForwarder(services, observe, logger);

  /**
   * An ordinary request (a query or mutation POSTed as JSON, asking for JSON) that one service can
   * answer whole is judged here and forwarded to it as it came, rather than executed again by the
   * runtime: parse, validation and limits against the public graph (documentPreparer, the
   * services' own), the cost on the supergraph, then the service's answer streamed back. Anything
   * else (a join of both services, a subscription, GET, SSE, a body of another shape) is left
   * untouched to the runtime, which judges it itself with the same limits: false then.
   */
  const forwarded = async (req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<boolean> => {
    // A body of another shape is the runtime's to refuse, in its own words.
    const params = bodyParams(body);
    if (typeof params === 'string') return false;
    const prepared = prepare(params.query, params.operationName);
    if ('errors' in prepared) {
      observe.erred(req);
      sendGraphqlAnswer(res, 200, { errors: prepared.errors.map((e) => mask(e)) });
      return true;
    }
    if (prepared.operation.operation === OperationTypeNode.SUBSCRIPTION) return false;
    // The cost first: it bounds every walk of the document after it (the route's included).
    const costly = tooCostly(prepared.document, params.operationName, params.variables);
    if (costly) {
      observe.named(req, prepared.operation);
      observe.erred(req);
      sendGraphqlAnswer(res, 200, { errors: [mask(costly)] });
      return true;
    }
    const subgraph = route(prepared.document);
    if (subgraph === undefined) return false;
    observe.named(req, prepared.operation);
    if (await forwarder.forward(subgraph, req, res, body)) observe.erred(req);
    return true;
  };

  const handler = (req: IncomingMessage & { body?: Buffer }, res: ServerResponse) => {
    observe.serve(req, res);
    const serve = async () => {
      const admitted = await admitGraphqlRequest(req, res, {
        cors,
        graphiql,
        authenticate: (header) => auth.authenticate(header),
        mask,
        logger,
      });
      if (!admitted) return;
      if (admitted.body && plainRequest(req) && (await forwarded(req, res, admitted.body))) return;
      // Handed over read (@whatwg-node/server takes a `body` found on the request).
      if (admitted.body) req.body = admitted.body;
      await runtime(req, res);
    };
    serve().catch((error: unknown) => {
      logger.error({ err: error }, 'gateway request failed');
      answerUnexpectedFailure(res);
    });
  };

  const server = await startHttpServer({
    port: config.PORT,
    host: config.HOST,
    handler,
    metrics: metrics.registry,
    // Each half of the graph is served while the other's service is down: a lost subgraph makes the
    // gateway degraded, not unready (taking it out of service would lose the half that still works);
    // with both lost it can serve nothing.
    checks: [
      { name: 'orders', check: () => healthy(config.ORDERS_URL) },
      { name: 'inventory', check: () => healthy(config.INVENTORY_URL) },
    ],
    ready: (up) => Object.values(up).some(Boolean),
    refuseRebindableHosts: auth.mode === 'disabled',
  });
  logger.info({ port: server.port, orders: config.ORDERS_URL, inventory: config.INVENTORY_URL, auth: auth.mode }, 'gateway listening');
  return {
    port: server.port,
    address: config.HOST,
    auth: auth.mode,
    close: async (giveUp = AbortSignal.timeout(config.SHUTDOWN_TIMEOUT_MS)) => {
      await server.close(giveUp);
      await runtime.dispose();
      await forwarder.close();
      for (const executor of executors) await executor[Symbol.asyncDispose]();
      await tracing?.shutdown();
    },
  };
}
