import type { IncomingMessage } from 'node:http';
import { negotiateFormat } from './format.ts';
import { isJsonContentType } from './request-body.ts';

/** The ordinary request the gateway forwards whole: a POST of JSON to /graphql, asking for JSON. */
export function plainRequest(req: IncomingMessage): boolean {
  return (
    req.method === 'POST' &&
    req.url?.split('?')[0] === '/graphql' &&
    isJsonContentType(req.headers['content-type']) &&
    negotiateFormat(req.headers.accept) === 'json'
  );
}

/** A GraphQL request's parameters, however they came: an operation name of '' is none, as Yoga takes it. */
export interface GraphqlParams {
  query: string;
  variables: Record<string, unknown> | undefined;
  operationName: string | undefined;
}

const PARAMS_SHAPE = 'a request is {"query": "...", "variables"?: {...}, "operationName"?: "...", "extensions"?: ...}';

/**
 * The parameters in `params` (a POST's JSON body, or GET's decoded query string): a query, variables
 * as an object (or none) and an operation name (or none), with nothing else but `extensions`; or
 * what is wrong with them, as a client is told it (400 BAD_REQUEST).
 */
export function checkedParams(params: unknown): GraphqlParams | string {
  if (params === null || typeof params !== 'object' || Array.isArray(params))
    return `Expected one JSON object (batches are not served): ${PARAMS_SHAPE}.`;
  const { query, variables, operationName, ...rest } = params as Record<string, unknown>;
  const unknown = Object.keys(rest).filter((k) => k !== 'extensions');
  if (unknown.length > 0) return `Unexpected parameter ${unknown.map((k) => JSON.stringify(k)).join(', ')}: ${PARAMS_SHAPE}.`;
  if (typeof query !== 'string') return `"query" must be a string: ${PARAMS_SHAPE}.`;
  if (!(variables === undefined || variables === null || (typeof variables === 'object' && !Array.isArray(variables))))
    return '"variables" must be an object (or null).';
  if (!(operationName === undefined || operationName === null || typeof operationName === 'string'))
    return '"operationName" must be a string (or null).';
  return { query, variables: (variables as Record<string, unknown> | null) ?? undefined, operationName: operationName || undefined };
}

/** A POST body's parameters (checkedParams), or what is wrong with them. */
export function bodyParams(body: Buffer): GraphqlParams | string {
  let params: unknown;
  try {
    params = JSON.parse(body.toString('utf8'));
  } catch {
    return `The body is not JSON: ${PARAMS_SHAPE}.`;
  }
  return checkedParams(params);
}
