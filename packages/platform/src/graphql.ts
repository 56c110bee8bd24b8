import { GraphQLError, GraphQLScalarType, Kind, type GraphQLSchema } from 'graphql';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import { AppError } from './errors.ts';
import type { Logger } from './logger.ts';

/**
 * Expected failures (AppError) reach the client with their code and message; anything else is
 * logged with its cause and masked, so a client never sees a stack trace or SQL.
 */
export function maskError(logger: Logger) {
  return (error: unknown): Error => {
    const original = error instanceof GraphQLError ? (error.originalError ?? error) : error;
    const located = error instanceof GraphQLError ? { nodes: error.nodes, path: error.path } : {};
    if (original instanceof AppError) {
      return new GraphQLError(original.message, { ...located, extensions: { code: original.code, ...original.details } });
    }
    if (original instanceof GraphQLError) {
      // Parse, validation and argument-coercion errors: the client's request is at fault.
      return original.extensions.code
        ? original
        : new GraphQLError(original.message, { ...located, extensions: { ...original.extensions, code: 'BAD_USER_INPUT' } });
    }
    logger.error({ err: original }, 'unexpected error while resolving a GraphQL request');
    return new GraphQLError('Unexpected error.', { ...located, extensions: { code: 'INTERNAL_SERVER_ERROR' } });
  };
}

export function createGraphqlServer<Context extends Record<string, unknown>>(options: {
  schema: GraphQLSchema;
  logger: Logger;
  graphiql: boolean;
  context: () => Context;
}): YogaServerInstance<Record<string, unknown>, Context> {
  return createYoga<Record<string, unknown>, Context>({
    schema: options.schema,
    graphiql: options.graphiql,
    landingPage: false,
    logging: false,
    context: options.context,
    maskedErrors: { maskError: maskError(options.logger), errorMessage: 'Unexpected error.' },
  });
}

/** ISO-8601 with milliseconds, in UTC. */
export const DateTimeScalar = new GraphQLScalarType<Date, string>({
  name: 'DateTime',
  description: 'A point in time, ISO-8601 in UTC with milliseconds, e.g. 2026-11-27T09:30:00.000Z',
  serialize(value) {
    const date = value instanceof Date ? value : new Date(value as string);
    if (Number.isNaN(date.getTime())) throw new GraphQLError('DateTime cannot represent an invalid date');
    return date.toISOString();
  },
  parseValue(value) {
    const date = typeof value === 'string' ? new Date(value) : new Date(Number.NaN);
    if (Number.isNaN(date.getTime())) throw new GraphQLError('DateTime must be an ISO-8601 string');
    return date;
  },
  parseLiteral(ast) {
    const date = ast.kind === Kind.STRING ? new Date(ast.value) : new Date(Number.NaN);
    if (Number.isNaN(date.getTime())) throw new GraphQLError('DateTime must be an ISO-8601 string');
    return date;
  },
});
