import type { IncomingMessage, ServerResponse } from 'node:http';
import { costLimitRule } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import {
  execute,
  getOperationAST,
  GraphQLError,
  GraphQLScalarType,
  Kind,
  NoSchemaIntrospectionCustomRule,
  OperationTypeNode,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { OPEN_ACCESS, type Access } from './auth.ts';
import { AppError } from './errors.ts';
import { parseTraceparent, TRACEPARENT_HEADER, type TraceContext } from './trace.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';

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

/** Most bytes a GraphQL request body may have. */
export const MAX_REQUEST_BODY_BYTES = 1_000_000;
/** Distinct query texts kept parsed and validated. */
const DOCUMENT_CACHE_SIZE = 1_000;

type Prepared = { document: DocumentNode; operation: OperationDefinitionNode } | { errors: GraphQLError[] };

function jsonAccepted(accept: string | undefined): boolean {
  return !accept || accept.includes('application/json') || accept.includes('*/*');
}

const coded = (errors: readonly GraphQLError[], code: string) =>
  errors.map(
    (e) => new GraphQLError(e.message, { nodes: e.nodes, source: e.source, positions: e.positions, extensions: { ...e.extensions, code } }),
  );

/** What every document must keep within, on both paths. */
export interface GraphqlLimits {
  maxDepth: number;
  maxAliases: number;
  maxCost: number;
  maxTokens: number;
  introspection: boolean;
}

/** The validation rules that enforce the limits (the token limit is the parser's). */
function limitRules(limits: GraphqlLimits): ValidationRule[] {
  // Reported as validation errors (GRAPHQL_VALIDATION_FAILED) rather than thrown.
  const report = {
    exposeLimits: true,
    propagateOnRejection: false,
    onReject: [(context: ValidationContext | null, error: GraphQLError) => context?.reportError(error)],
  };
  return [
    maxDepthRule({ n: limits.maxDepth, ignoreIntrospection: true, ...report }),
    maxAliasesRule({ n: limits.maxAliases, ...report }),
    // graphql-armor's estimate: fields weighted by depth, lists multiplied by their `first`.
    costLimitRule({ maxCost: limits.maxCost, ...report }),
    ...(limits.introspection ? [] : [NoSchemaIntrospectionCustomRule]),
  ];
}

type RequestWithAccess = IncomingMessage & { access?: Access };

/**
 * The GraphQL endpoint (`/graphql`) of a service, as an HTTP handler.
 *
 * graphql-yoga serves GraphiQL, subscriptions over SSE, GET and anything unusual. The ordinary
 * request (a POST of JSON asking for JSON, a query or a mutation) takes a direct path: the body
 * is read, the document parsed and validated once per distinct text, and executed with graphql-js,
 * with the same error masking. Yoga's per-request machinery (fetch-API objects, abort signals,
 * plugin hooks) cost about 0.2 ms of CPU per request, the largest item of the Order Service under
 * load. A request the direct path does not recognise is handed to Yoga as it came.
 *
 * Every operation, on either path, first passes `authenticate` (401 UNAUTHENTICATED otherwise)
 * and the limits (depth, aliases, cost, tokens, introspection); the GraphiQL page itself needs
 * no token.
 */
export function createGraphqlServer<Context extends Record<string, unknown>>(options: {
  schema: GraphQLSchema;
  logger: Logger;
  graphiql: boolean;
  authenticate: (authorization: string | undefined) => Promise<Access>;
  /** The request's context: who asks, and the trace it belongs to (its `traceparent` header). */
  context: (access: Access, request: { trace: TraceContext | undefined }) => Context;
  limits: GraphqlLimits;
  metrics?: Metrics;
}): (req: IncomingMessage, res: ServerResponse) => void {
  const { metrics, limits } = options;
  const maskOnly = maskError(options.logger);
  const mask = (error: unknown): Error => {
    const masked = maskOnly(error) as GraphQLError;
    const code = masked.extensions.code;
    metrics?.graphqlErrors.inc({ code: typeof code === 'string' ? code : 'UNKNOWN' });
    return masked;
  };
  const limitRuleList = limitRules(limits);
  const rules = [...specifiedRules, ...limitRuleList];
  const parseLimited = (query: string) => parse(query, { maxTokens: limits.maxTokens });
  const limitsPlugin: Plugin = {
    onParse({ setParseFn }) {
      setParseFn(parseLimited);
    },
    onValidate({ addValidationRule }) {
      for (const rule of limitRuleList) addValidationRule(rule);
    },
  };
  const yoga: YogaServerInstance<{ req: RequestWithAccess }, Context> = createYoga<{ req: RequestWithAccess }, Context>({
    schema: options.schema,
    graphiql: options.graphiql,
    landingPage: false,
    logging: false,
    context: ({ req }) => options.context(req.access ?? OPEN_ACCESS, { trace: parseTraceparent(req.headers[TRACEPARENT_HEADER]) }),
    maskedErrors: { maskError: mask, errorMessage: 'Unexpected error.' },
    plugins: [limitsPlugin],
  });

  const documents = new Map<string, Prepared>();
  const prepare = (query: string, operationName: string | undefined): Prepared => {
    const key = operationName ? `${operationName}\u0000${query}` : query;
    const cached = documents.get(key);
    if (cached) {
      // Most recently used last: the first key is the one to evict.
      documents.delete(key);
      documents.set(key, cached);
      return cached;
    }
    let prepared: Prepared;
    try {
      const document = parseLimited(query);
      const invalid = validate(options.schema, document, rules);
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
    documents.set(key, prepared);
    if (documents.size > DOCUMENT_CACHE_SIZE) documents.delete(documents.keys().next().value as string);
    return prepared;
  };

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const json = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json), ...headers });
    res.end(json);
  };

  /** 413, then the connection is dropped rather than the rest of an oversized body read. */
  const refuseTooLarge = (req: IncomingMessage, res: ServerResponse) => {
    res.setHeader('connection', 'close');
    res.once('finish', () => req.destroy());
    send(res, 413, {
      errors: [{ message: `Request body is larger than ${MAX_REQUEST_BODY_BYTES} bytes.`, extensions: { code: 'BAD_REQUEST' } }],
    });
  };

  /** Yoga answers a request whose body was already read (anything the direct path leaves alone). */
  const viaYoga = async (req: RequestWithAccess, res: ServerResponse, body: Buffer) => {
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && name !== 'content-length') headers.set(name, Array.isArray(value) ? value.join(', ') : value);
    }
    const url = new URL(req.url ?? '/graphql', `http://${req.headers.host ?? 'localhost'}`);
    const response = await yoga.fetch(url, { method: 'POST', headers, body: new Uint8Array(body) }, { req });
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  };

  type Labels = { operation: string; outcome: 'ok' | 'error' };
  const direct = async (req: RequestWithAccess, res: ServerResponse, labels: Labels, access: Access) => {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_REQUEST_BODY_BYTES) return refuseTooLarge(req, res);
      chunks.push(chunk);
    }
    const body = Buffer.concat(chunks);
    let params: unknown;
    try {
      params = JSON.parse(body.toString('utf8'));
    } catch {
      return viaYoga(req, res, body);
    }
    const { query, variables, operationName, ...rest } = (params ?? {}) as Record<string, unknown>;
    const extra = Object.keys(rest).filter((k) => k !== 'extensions');
    if (
      typeof query !== 'string' ||
      extra.length > 0 ||
      !(variables === undefined || variables === null || (typeof variables === 'object' && !Array.isArray(variables))) ||
      !(operationName === undefined || operationName === null || typeof operationName === 'string')
    ) {
      return viaYoga(req, res, body);
    }
    const prepared = prepare(query, operationName ?? undefined);
    if ('errors' in prepared) {
      labels.outcome = 'error';
      return send(res, 200, { errors: prepared.errors.map(mask) });
    }
    labels.operation = prepared.operation.operation;
    if (prepared.operation.operation === OperationTypeNode.SUBSCRIPTION) return viaYoga(req, res, body);
    const result = await execute({
      schema: options.schema,
      document: prepared.document,
      operationName: operationName ?? undefined,
      variableValues: (variables as Record<string, unknown> | null) ?? undefined,
      contextValue: options.context(access, { trace: parseTraceparent(req.headers[TRACEPARENT_HEADER]) }),
    });
    if (result.errors) labels.outcome = 'error';
    send(res, 200, result.errors ? { errors: result.errors.map(mask), data: result.data } : { data: result.data });
  };

  const handle = async (req: RequestWithAccess, res: ServerResponse, plain: boolean, labels: Labels) => {
    // The direct path counts bytes as they come; a declared size over the limit is refused here,
    // whichever path the request would take.
    if (Number(req.headers['content-length'] ?? 0) > MAX_REQUEST_BODY_BYTES) {
      labels.outcome = 'error';
      return refuseTooLarge(req, res);
    }
    const accept = req.headers.accept ?? '';
    const graphiqlPage = options.graphiql && req.method === 'GET' && accept.includes('text/html');
    if (req.method !== 'OPTIONS' && !graphiqlPage) {
      try {
        req.access = await options.authenticate(req.headers.authorization);
      } catch (error) {
        labels.outcome = 'error';
        const masked = mask(error) as GraphQLError;
        return send(res, 401, { errors: [masked.toJSON()] }, { 'www-authenticate': 'Bearer' });
      }
    }
    if (plain) return direct(req, res, labels, req.access ?? OPEN_ACCESS);
    return yoga.handle(req, res);
  };

  return (req, res) => {
    const path = req.url?.split('?')[0];
    const plain =
      req.method === 'POST' &&
      path === '/graphql' &&
      (req.headers['content-type'] ?? '').startsWith('application/json') &&
      jsonAccepted(req.headers.accept);
    const labels: Labels = {
      operation: plain ? 'other' : req.headers.accept?.includes('text/event-stream') ? 'subscription' : 'other',
      outcome: 'ok',
    };
    if (metrics) {
      const stop = metrics.graphqlDuration.startTimer();
      res.once('finish', () => stop({ operation: labels.operation, outcome: res.statusCode >= 400 ? 'error' : labels.outcome }));
    }
    handle(req, res, plain, labels).catch((error: unknown) => {
      options.logger.error({ err: error }, 'GraphQL request failed');
      if (!res.headersSent) send(res, 500, { errors: [{ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
      else res.destroy();
    });
  };
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
