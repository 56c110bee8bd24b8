import { GraphQLError } from 'graphql';
import { AppError } from '@stockflow/platform';
import type { Logger } from '@stockflow/observability';

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
    logger.error({ err: original, path: located.path?.join('.') }, 'unexpected error while resolving a GraphQL request');
    return new GraphQLError('Unexpected error.', { ...located, extensions: { code: 'INTERNAL_SERVER_ERROR' } });
  };
}
