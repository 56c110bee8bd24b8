import type { IncomingMessage, ServerResponse } from 'node:http';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import {
  getOperationAST,
  GraphQLError,
  GraphQLScalarType,
  Kind,
  NoSchemaIntrospectionCustomRule,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type Source,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import type { GraphiQLOptions, Plugin } from 'graphql-yoga';
import type { Access } from './auth.ts';
import type { costLimit } from './cost.ts';
import { AppError } from './errors.ts';
import { markSubscription } from './http.ts';
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
    logger.error({ err: original, path: located.path?.join('.') }, 'unexpected error while resolving a GraphQL request');
    return new GraphQLError('Unexpected error.', { ...located, extensions: { code: 'INTERNAL_SERVER_ERROR' } });
  };
}

/** The answer to a request that failed unexpectedly (already logged): 500 without details, or a cut connection once the answer has begun. */
export function answerUnexpectedFailure(res: ServerResponse): void {
  if (!res.headersSent)
    sendGraphqlAnswer(res, 500, { errors: [{ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
  else res.destroy();
}

/**
 * The GraphiQL page with its scripts, styles and editor workers in it (@graphql-yoga/render-graphiql),
 * for a service's pipeline and the gateway's Yoga-based runtime: Yoga's own page loads them from
 * unpkg.com and, offline or behind a proxy that blocks it, never gets past "Loading". The page is
 * about 9 MB, so the module is loaded at the first page asked for, never in a process with
 * GraphiQL off.
 */
export const renderGraphiQL = async (options: GraphiQLOptions): Promise<string> =>
  (await import('@graphql-yoga/render-graphiql')).renderGraphiQL(options);

/** Most bytes a GraphQL request body may have. */
export const MAX_REQUEST_BODY_BYTES = 1_000_000;

/** A GraphQL answer (or refusal) as JSON, whole: the services' and the gateway's. */
export function sendGraphqlAnswer(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json), ...headers });
  res.end(json);
}

/** 413, then the connection is dropped rather than the rest of an oversized body read (the services and the gateway). */
export function refuseTooLargeBody(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('connection', 'close');
  res.once('finish', () => req.destroy());
  sendGraphqlAnswer(res, 413, {
    errors: [{ message: `Request body is larger than ${MAX_REQUEST_BODY_BYTES} bytes.`, extensions: { code: 'BAD_REQUEST' } }],
  });
}

/** The body, counted as it comes in (chunked too); null once it passes MAX_REQUEST_BODY_BYTES. */
export async function readLimitedBody(req: IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_REQUEST_BODY_BYTES) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** How an answer is written: one JSON document, or server-sent events (a subscription's stream). */
export type AnswerFormat = 'json' | 'sse';

const FORMATS: Readonly<Record<string, AnswerFormat>> = {
  'application/json': 'json',
  'application/graphql-response+json': 'json',
  'application/*': 'json',
  '*/*': 'json',
  'text/event-stream': 'sse',
};

/** Accept headers repeat (each client sends its own, always the same): each is read once. */
const negotiated = new Map<string, AnswerFormat | undefined>();
const NEGOTIATED_CACHE_SIZE = 100;

/**
 * The format an Accept header asks for: the acceptable media range with the highest q-value,
 * the first of those with the same; JSON without an Accept header. Undefined when nothing we
 * write is acceptable (406).
 */
export function negotiateFormat(accept: string | undefined): AnswerFormat | undefined {
  if (!accept) return 'json';
  if (negotiated.has(accept)) return negotiated.get(accept);
  let best: AnswerFormat | undefined;
  let bestQ = 0;
  for (const range of accept.split(',')) {
    const [type = '', ...parameters] = range.split(';');
    const format = FORMATS[type.trim().toLowerCase()];
    if (!format) continue;
    let q = 1;
    for (const parameter of parameters) {
      const [name = '', value = ''] = parameter.split('=');
      if (name.trim().toLowerCase() === 'q') q = Number(value.trim());
    }
    // q=0 is "not acceptable"; a q that is not a number is taken as one.
    if (Number.isNaN(q)) q = 1;
    if (q > bestQ) {
      best = format;
      bestQ = q;
    }
  }
  if (negotiated.size >= NEGOTIATED_CACHE_SIZE) negotiated.delete(negotiated.keys().next().value as string);
  negotiated.set(accept, best);
  return best;
}

const isJson = (contentType: string | undefined) => contentType?.split(';')[0]?.trim().toLowerCase() === 'application/json';

/**
 * The answer (415) to a POST whose body is not application/json, else undefined: a web page of
 * another site can send a form or plain text without a CORS preflight, never JSON.
 */
export function notJsonRefusal(
  req: IncomingMessage,
): { status: 415; body: { errors: { message: string; extensions: { code: string } }[] } } | undefined {
  const type = req.headers['content-type'];
  if (req.method !== 'POST' || isJson(type)) return undefined;
  return {
    status: 415,
    body: {
      errors: [
        {
          message: `A POST body must be application/json${type ? ` (this one is ${type})` : ''}: operations are not taken from forms or plain text, which any web page can send.`,
          extensions: { code: 'BAD_REQUEST' },
        },
      ],
    },
  };
}

const coded = (errors: readonly GraphQLError[], code: string) =>
  errors.map(
    (e) => new GraphQLError(e.message, { nodes: e.nodes, source: e.source, positions: e.positions, extensions: { ...e.extensions, code } }),
  );

/** What every document must keep within, at a service and at the gateway. */
export interface GraphqlLimits {
  maxDepth: number;
  maxAliases: number;
  maxCost: number;
  maxTokens: number;
  introspection: boolean;
}

/**
 * The validation rules that enforce the limits (the token limit is the parser's; the cost, which
 * depends on the variables, is counted before each execution by `costLimit`).
 */
function limitRules(limits: Omit<GraphqlLimits, 'maxCost'>): ValidationRule[] {
  // Reported as validation errors (GRAPHQL_VALIDATION_FAILED) rather than thrown.
  const report = {
    exposeLimits: true,
    propagateOnRejection: false,
    onReject: [(context: ValidationContext | null, error: GraphQLError) => context?.reportError(error)],
  };
  return [
    maxDepthRule({ n: limits.maxDepth, ignoreIntrospection: true, ...report }),
    maxAliasesRule({ n: limits.maxAliases, ...report }),
    ...(limits.introspection ? [] : [NoSchemaIntrospectionCustomRule]),
  ];
}

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

/** The ordinary request the gateway forwards whole: a POST of JSON to /graphql, asking for JSON. */
export function plainRequest(req: IncomingMessage): boolean {
  return (
    req.method === 'POST' &&
    req.url?.split('?')[0] === '/graphql' &&
    isJson(req.headers['content-type']) &&
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

/**
 * The limits as one Yoga plugin, for the gateway's Hive runtime on the supergraph (the services
 * judge with `documentPreparer` and `costLimit` in their own pipeline; the supergraph's lists keep their services' `@listSize`, so the whole operation is held to what the
 * services apply to their shares): tokens while parsing; depth, aliases and introspection in
 * validation; the cost (`tooCostly`, with the request's variables) before an operation runs or a
 * subscription starts. A subscription's request is marked too: its stream never ends by itself,
 * so a shutdown closes it rather than wait for it (a query or mutation sent over SSE is answered,
 * then ends).
 */
export function limitsPlugin(limits: Omit<GraphqlLimits, 'maxCost'>, tooCostly: ReturnType<typeof costLimit>): Plugin {
  const rules = limitRules(limits);
  const stopIfTooCostly = (hook: { args: ExecutionArgs; setResultAndStopExecution: (result: ExecutionResult) => void }) => {
    const error = tooCostly(hook.args.document, hook.args.operationName, hook.args.variableValues);
    if (error) hook.setResultAndStopExecution({ errors: [error] });
  };
  return {
    onParse({ setParseFn }) {
      setParseFn((source: string | Source) => parse(source, { maxTokens: limits.maxTokens }));
    },
    onValidate({ addValidationRule }) {
      for (const rule of rules) addValidationRule(rule);
    },
    onExecute: stopIfTooCostly,
    onSubscribe(hook) {
      const { req } = hook.args.contextValue as { req?: IncomingMessage };
      if (req) markSubscription(req);
      stopIfTooCostly(hook);
    },
  };
}

/**
 * CORS for an origin on the allow-list (set before any answer, so errors are readable too);
 * nothing for any other, so the browser keeps that page from the answer and from sending
 * anything a preflight guards. The responder returns true when the request was a preflight, now
 * answered. The services' and the gateway's, so one page is let in by both alike.
 */
export function corsResponder(origins: readonly string[]): (req: IncomingMessage, res: ServerResponse) => boolean {
  const allowList = new Set(origins);
  return (req, res) => {
    const origin = req.headers.origin;
    const allowed = origin !== undefined && allowList.has(origin);
    if (allowList.size > 0) res.setHeader('vary', 'Origin');
    if (allowed) res.setHeader('access-control-allow-origin', origin);
    if (req.method !== 'OPTIONS') return false;
    const requested = req.headers['access-control-request-headers'];
    res.writeHead(
      204,
      allowed
        ? {
            'access-control-allow-methods': 'GET, POST',
            ...(requested ? { 'access-control-allow-headers': requested } : {}),
            'access-control-max-age': '600',
          }
        : {},
    );
    res.end();
    return true;
  };
}

/** The response header that marks an answer given with authentication off, to anyone: `disabled`. */
export const AUTH_NOTICE_HEADER = 'x-stockflow-auth';

let credentialsIgnoredWarned = false;

/**
 * With authentication off, nothing checks a token: `Bearer garbage` is served as an admin token
 * is, and a customer's token reads every customer's orders. So each answer says so in a header,
 * and the first request in the process that brings credentials is logged as a warning (once, not
 * per request: a client sending them would flood the log).
 */
function noticeOpenAccess(req: IncomingMessage, res: ServerResponse, logger: Logger): void {
  res.setHeader(AUTH_NOTICE_HEADER, 'disabled');
  if (credentialsIgnoredWarned || req.headers.authorization === undefined) return;
  credentialsIgnoredWarned = true;
  logger.warn(
    'a request brought credentials (Authorization) but authentication is off: they were not checked and the request had full access; set AUTH_JWT_SECRET (or AUTH_JWKS_URL) to check tokens',
  );
}

/**
 * Whether the request asks for the GraphiQL page, which needs no token: then it is answered with
 * the page and nothing else (a service's pipeline and the gateway alike), so that no operation
 * runs unauthenticated.
 */
export function graphiqlPageAsked(req: IncomingMessage, graphiql: boolean): boolean {
  return graphiql && req.method === 'GET' && (req.headers.accept ?? '').includes('text/html');
}

/** What a GraphQL request brings once admitted: who asks (not asked of the GraphiQL page), and its body (none for GET or HEAD). */
export interface AdmittedRequest {
  access: Access | undefined;
  body: Buffer | undefined;
}

/**
 * What a GraphQL request passes before anything reads its operation, at a service or at the
 * gateway, in this order: CORS (a preflight is answered here), the declared size (413), the token
 * (401 UNAUTHENTICATED, with the error as `maskError` words it; the GraphiQL page needs none; with
 * authentication off, the answer is marked and credentials warned of: noticeOpenAccess), the
 * body read within MAX_REQUEST_BODY_BYTES (413), and JSON for a POST (415). Resolves with what it
 * admitted, or undefined once it has answered the request itself.
 */
export async function admitGraphqlRequest(
  req: IncomingMessage,
  res: ServerResponse,
  options: {
    cors: (req: IncomingMessage, res: ServerResponse) => boolean;
    graphiql: boolean;
    authenticate: (authorization: string | undefined) => Promise<Access>;
    mask: (error: unknown) => Error;
    logger: Logger;
  },
): Promise<AdmittedRequest | undefined> {
  if (options.cors(req, res)) return undefined;
  // A declared size over the limit is refused before anything else; a body sent without one
  // (chunked) is counted as it comes (readLimitedBody).
  if (Number(req.headers['content-length'] ?? 0) > MAX_REQUEST_BODY_BYTES) return void refuseTooLargeBody(req, res);
  let access: Access | undefined;
  if (!graphiqlPageAsked(req, options.graphiql)) {
    try {
      access = await options.authenticate(req.headers.authorization);
    } catch (error) {
      const masked = options.mask(error) as GraphQLError;
      return void sendGraphqlAnswer(res, 401, { errors: [masked.toJSON()] }, { 'www-authenticate': 'Bearer' });
    }
    if (access.open) noticeOpenAccess(req, res, options.logger);
  }
  const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : await readLimitedBody(req);
  if (body === null) return void refuseTooLargeBody(req, res);
  const refusal = notJsonRefusal(req);
  if (refusal) return void sendGraphqlAnswer(res, refusal.status, refusal.body);
  return { access, body };
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
