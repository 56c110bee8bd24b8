import {
  getOperationAST,
  GraphQLError,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';
import { limitRules, type GraphqlLimits } from './limits.ts';

const coded = (errors: readonly GraphQLError[], code: string) =>
  errors.map(
    (e) => new GraphQLError(e.message, { nodes: e.nodes, source: e.source, positions: e.positions, extensions: { ...e.extensions, code } }),
  );

/** Distinct query texts kept parsed and validated. */
const DOCUMENT_CACHE_SIZE = 1_000;
/**
 * The longest query text (with its operation name) kept: a cached document holds its source, and a comment is free of the
 * token limit, so 1,000 texts of a megabyte each (one comment apiece) would hold two gigabytes.
 * The operations of a real client are a few hundred bytes to a few kilobytes; a longer one is
 * parsed and validated each time it comes, which the body limit bounds.
 */
const CACHED_QUERY_MAX_CHARS = 8_192;

export type PreparedDocument = { document: DocumentNode; operation: OperationDefinitionNode } | { errors: GraphQLError[] };

/**
 * Parses (within the token limit) and validates (with the depth, alias and introspection rules) a
 * query against `schema`, and finds the operation asked for: once per distinct text and operation
 * name, the most recently used DOCUMENT_CACHE_SIZE kept (texts up to CACHED_QUERY_MAX_CHARS). A service's pipeline and the gateway's
 * share it, so a document is judged the same at both.
 */
export function documentPreparer(schema: GraphQLSchema, limits: Omit<GraphqlLimits, 'maxCost'>) {
  const rules = [...specifiedRules, ...limitRules(limits)];
  const documents = new Map<string, PreparedDocument>();
  return (query: string, operationName: string | undefined): PreparedDocument => {
    // The name's length first, so no name and text can be taken for another pair.
    const key = operationName === undefined ? `-${query}` : `${operationName.length}:${operationName}${query}`;
    const cached = documents.get(key);
    if (cached) {
      // Most recently used last: the first key is the one to evict.
      documents.delete(key);
      documents.set(key, cached);
      return cached;
    }
    let prepared: PreparedDocument;
    try {
      const document = parse(query, { maxTokens: limits.maxTokens });
      const invalid = validate(schema, document, rules);
      const operation = getOperationAST(document, operationName);
      if (invalid.length > 0) prepared = { errors: coded(invalid, 'GRAPHQL_VALIDATION_FAILED') };
      else if (!operation)
        prepared = {
          errors: [
            new GraphQLError('Could not determine what operation to execute.', { extensions: { code: 'OPERATION_RESOLUTION_FAILURE' } }),
          ],
        };
      else prepared = { document, operation };
    } catch (error) {
      prepared = { errors: coded([error instanceof GraphQLError ? error : new GraphQLError(String(error))], 'GRAPHQL_PARSE_FAILED') };
    }
    if (key.length > CACHED_QUERY_MAX_CHARS) return prepared;
    documents.set(key, prepared);
    if (documents.size > DOCUMENT_CACHE_SIZE) documents.delete(documents.keys().next().value as string);
    return prepared;
  };
}
