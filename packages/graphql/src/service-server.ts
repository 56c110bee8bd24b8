import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GraphQLSchema } from 'graphql';
import { graphiqlEnabled, graphqlLimits, type Access, type Authenticator, type ServiceConfig } from '@stockflow/platform';
import type { Logger, Metrics, Tracing, TraceContext } from '@stockflow/observability';
import { createGraphqlServer } from './pipeline.ts';

/**
 * A service's GraphQL server, set up from its configuration (GraphiQL, limits, CORS) and its
 * process (auth, metrics, tracing) the same way for every service; only the schema and the
 * request's context are the service's own.
 */
export function createServiceGraphqlServer<Context extends Record<string, unknown>>(options: {
  config: ServiceConfig;
  logger: Logger;
  auth: Authenticator;
  metrics: Metrics;
  tracing: Tracing | undefined;
  schema: GraphQLSchema;
  context: (access: Access, request: { trace: TraceContext | undefined }) => Context;
}): (req: IncomingMessage, res: ServerResponse) => void {
  const { config, auth } = options;
  return createGraphqlServer({
    schema: options.schema,
    logger: options.logger,
    graphiql: graphiqlEnabled(config),
    metrics: options.metrics,
    tracing: options.tracing,
    authenticate: (authorization) => auth.authenticate(authorization),
    limits: graphqlLimits(config),
    corsOrigins: config.CORS_ORIGINS,
    context: options.context,
  });
}
