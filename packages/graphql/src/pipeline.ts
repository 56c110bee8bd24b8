import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  execute,
  GraphQLError,
  OperationTypeNode,
  subscribe,
  type DocumentNode,
  type ExecutionResult,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';
import { OPEN_ACCESS, markSubscription, type Access } from '@stockflow/platform';
import {
  timeGraphqlRequest,
  parseTraceparent,
  TRACEPARENT_HEADER,
  type Logger,
  type Metrics,
  type ServedRequest,
  type TraceContext,
  type Tracing,
} from '@stockflow/observability';
import { costLimit } from './cost.ts';
import { admitGraphqlRequest } from './admission.ts';
import { answerUnexpectedFailure, sendGraphqlAnswer } from './answer.ts';
import { bodyParams, checkedParams, type GraphqlParams } from './params.ts';
import { corsResponder } from './cors.ts';
import { documentPreparer } from './documents.ts';
import { graphiqlPageAsked, renderGraphiQL } from './graphiql.ts';
import { maskError } from './masking.ts';
import { negotiateFormat, type AnswerFormat } from './format.ts';
import type { GraphqlLimits } from './limits.ts';

/**
 * GET's parameters from its query string: `query`, `operationName`, and `variables` and
 * `extensions` JSON-encoded (as graphql-http and Hive Gateway's executor send them); any other
 * parameter is ignored. Checked as a POST body is (checkedParams).
 */
export function queryStringParams(url: string): GraphqlParams | string {
  const start = url.indexOf('?');
  const search = new URLSearchParams(start < 0 ? '' : url.slice(start + 1));
  const params: Record<string, unknown> = {};
  const query = search.get('query');
  if (query !== null) params.query = query;
  const operationName = search.get('operationName');
  if (operationName !== null) params.operationName = operationName;
  for (const name of ['variables', 'extensions']) {
    const value = search.get(name);
    if (value === null) continue;
    try {
      params[name] = JSON.parse(value) as unknown;
    } catch {
      return `"${name}" must be JSON-encoded in the query string.`;
    }
  }
  return checkedParams(params);
}

/** An answer that is an HTTP-level refusal: status, one error with a code, headers. */
function refuse(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  sendGraphqlAnswer(res, status, { errors: [{ message, extensions: { code: 'BAD_REQUEST' } }] }, headers);
}

/** Yoga's keep-alive comment; 12 s as Yoga, under the idle timeouts of common proxies. */
const KEEP_ALIVE_MS = 12_000;

function startEventStream(res: ServerResponse): void {
  // No `connection` header: a draining server's `connection: close` must stand.
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'content-encoding': 'none' });
  // A first comment flushes the headers: some clients wait for a body before they report the response.
  res.write(':\n\n');
}

const eventOf = (json: string) => `event: next\ndata: ${json}\n\n`;
const COMPLETE_EVENT = 'event: complete\ndata:\n\n';

/** Resolves once the response can take more (drain) or is gone (close). */
const writable = (res: ServerResponse) =>
  new Promise<void>((resolve) => {
    // Gone already: its 'close' has been emitted, or comes without a 'drain'.
    if (gone(res)) return resolve();
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });

/** Whether the client left before the answer ended. */
const gone = (res: ServerResponse) => res.destroyed || (res.closed && !res.writableFinished);

/**
 * A subscription's results as server-sent events, as graphql-yoga 5 wrote them (Hive Gateway's
 * executor and the dashboard read them): `event: next` with each result, `event: complete` at
 * the end, keep-alive comments between. Waits for 'drain' when the client reads slower than the
 * events come; the client leaving (or a shutdown cutting the stream) ends the iterator.
 */
async function streamEvents(res: ServerResponse, results: AsyncGenerator<ExecutionResult>, json: (result: ExecutionResult) => string) {
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    // A source that fails as it is stopped (its read cut by the client's leaving) has nobody to tell.
    results.return(undefined).catch(() => undefined);
  };
  const leave = () => {
    if (!res.writableFinished) end();
  };
  // Left while the subscription was starting: nothing was listening for it.
  if (gone(res)) return end();
  res.once('close', leave);
  startEventStream(res);
  const keepAlive = setInterval(() => {
    if (!res.writableNeedDrain) res.write(':\n\n');
  }, KEEP_ALIVE_MS);
  try {
    for (;;) {
      let next: IteratorResult<ExecutionResult>;
      try {
        next = await results.next();
      } catch (error) {
        // The source failed mid-stream: the client gets the error, masked, as the stream's last
        // event (as Yoga sent it), not a cut connection.
        ended = true;
        const cause = error instanceof Error ? error : new Error(String(error));
        if (!gone(res))
          res.write(
            eventOf(json({ errors: [error instanceof GraphQLError ? error : new GraphQLError(cause.message, { originalError: cause })] })),
          );
        break;
      }
      if (next.done) {
        ended = true;
        break;
      }
      if (gone(res)) break;
      if (!res.write(eventOf(json(next.value)))) await writable(res);
    }
    if (!gone(res)) res.end(COMPLETE_EVENT);
  } finally {
    clearInterval(keepAlive);
    res.off('close', leave);
    // Cut (a shutdown destroys it), or a write failed: the source is stopped either way.
    end();
  }
}

/** The GraphiQL page is about 9 MB, rendered once; a failure is not kept, so the next request tries again. */
let graphiqlPage: Promise<Buffer> | undefined;
const renderedGraphiql = () =>
  (graphiqlPage ??= renderGraphiQL({}).then(
    // Encoded once: every request then shares the same bytes instead of encoding 9 MB again.
    (page) => Buffer.from(page),
    (error: unknown) => {
      graphiqlPage = undefined;
      throw error;
    },
  ));

type RequestWithServed = IncomingMessage & { served?: ServedRequest };

/** The trace a request belongs to: its span when traced, else its `traceparent` header. */
const traceOf = (req: RequestWithServed) => req.served?.trace ?? parseTraceparent(req.headers[TRACEPARENT_HEADER]);

type Judged =
  | { document: DocumentNode; operation: OperationDefinitionNode }
  | { operation?: OperationDefinitionNode; status: number; errors: GraphQLError[]; headers?: Record<string, string> };

/**
 * The GraphQL endpoint (`/graphql`) of a service, as an HTTP handler: one pipeline for every
 * transport it serves (POST of JSON, GET, server-sent events; no WebSocket), so every request
 * meets the same checks in the same place.
 *
 * In order: the path (404 but for /graphql); admission (admitGraphqlRequest: CORS, size 413,
 * token 401, body, 415 for a POST not of JSON); the method (GET, HEAD or POST, else 405); the
 * GraphiQL page (GET asking for text/html, when `graphiql` is on: no operation runs then); the
 * format (Accept: JSON or server-sent events, else 406); the parameters (from the JSON body or
 * GET's query string, else 400); the judgement (`judge`: parse within the token limit,
 * validation with the depth, alias and introspection rules, the operation asked for, no mutation
 * over GET (405), a subscription only as server-sent events (406), the cost with the variables),
 * whose refusal is the same whatever the transport; then graphql-js runs it (`execute`, or
 * `subscribe` and a stream of events), its errors masked (maskError). HEAD is judged as GET is
 * and answered with headers only, running nothing.
 *
 * Yoga's per-request machinery (fetch-API objects, abort signals, plugin hooks) cost about 0.2 ms
 * of CPU per request, the largest item of the Order Service under load: none of it is here.
 */
export function createGraphqlServer<Context extends Record<string, unknown>>(options: {
  schema: GraphQLSchema;
  logger: Logger;
  graphiql: boolean;
  authenticate: (authorization: string | undefined) => Promise<Access>;
  /** The request's context: who asks, and the trace it belongs to (its `traceparent` header). */
  context: (access: Access, request: { trace: TraceContext | undefined }) => Context;
  limits: GraphqlLimits;
  /** Origins (scheme://host[:port]) whose pages may call the API from a browser; none by default. */
  corsOrigins?: readonly string[];
  metrics?: Metrics;
  /** Each request a SERVER span, continuing its `traceparent`, when tracing is on. */
  tracing?: Tracing | undefined;
}): (req: IncomingMessage, res: ServerResponse) => void {
  const { metrics, limits, schema } = options;
  const maskOnly = maskError(options.logger);
  const mask = (error: unknown): GraphQLError => {
    const masked = maskOnly(error) as GraphQLError;
    const code = masked.extensions.code;
    metrics?.graphqlErrors.inc({ code: typeof code === 'string' ? code : 'UNKNOWN' });
    return masked;
  };
  type Labels = { operation: string; outcome: 'ok' | 'error' };
  const json = (result: ExecutionResult, labels: Labels) => {
    if (!result.errors) return JSON.stringify({ data: result.data });
    labels.outcome = 'error';
    return JSON.stringify({ errors: result.errors.map(mask), data: result.data });
  };
  const prepare = documentPreparer(schema, limits);
  const tooCostly = costLimit(schema, limits.maxCost);
  const cors = corsResponder(options.corsOrigins ?? []);
  const refusal = (status: number, error: GraphQLError, operation?: OperationDefinitionNode, headers?: Record<string, string>): Judged => ({
    status,
    errors: [error],
    operation,
    headers,
  });

  /** Whether the operation may run, the same whatever the transport: the document, the operation, the method and format it needs, the cost. */
  const judge = (params: GraphqlParams, method: string, format: AnswerFormat): Judged => {
    const prepared = prepare(params.query, params.operationName);
    if ('errors' in prepared) return { status: 200, errors: prepared.errors };
    const { operation } = prepared;
    if (operation.operation === OperationTypeNode.MUTATION && method !== 'POST')
      return refusal(
        405,
        new GraphQLError('A mutation is sent with POST: a GET changes nothing.', { extensions: { code: 'BAD_REQUEST' } }),
        operation,
        { allow: 'POST' },
      );
    if (operation.operation === OperationTypeNode.SUBSCRIPTION && format !== 'sse')
      return refusal(
        406,
        new GraphQLError('A subscription is answered only as server-sent events: send it with Accept: text/event-stream.', {
          extensions: { code: 'BAD_REQUEST' },
        }),
        operation,
      );
    const costError = tooCostly(prepared.document, params.operationName, params.variables);
    if (costError) return refusal(200, costError, operation);
    return prepared;
  };

  /** One result, as JSON or as one event then the end of the stream. */
  const answer = (res: ServerResponse, format: AnswerFormat, status: number, body: string, headers?: Record<string, string>) => {
    if (format === 'sse' && status === 200) {
      startEventStream(res);
      return res.end(eventOf(body) + COMPLETE_EVENT);
    }
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
    res.end(body);
  };

  const handle = async (req: RequestWithServed, res: ServerResponse, labels: Labels) => {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    if ((query < 0 ? url : url.slice(0, query)) !== '/graphql')
      return sendGraphqlAnswer(res, 404, { errors: [{ message: 'The GraphQL endpoint is /graphql.', extensions: { code: 'NOT_FOUND' } }] });
    const admitted = await admitGraphqlRequest(req, res, {
      cors,
      graphiql: options.graphiql,
      authenticate: options.authenticate,
      mask,
      logger: options.logger,
    });
    // Refused: its status (4xx) counts it as an error.
    if (!admitted) return;
    const method = req.method ?? 'GET';
    if (method !== 'POST' && method !== 'GET' && method !== 'HEAD')
      return refuse(res, 405, `The GraphQL endpoint takes POST and GET, not ${method}.`, { allow: 'GET, HEAD, POST' });
    if (graphiqlPageAsked(req, options.graphiql)) {
      const page = await renderedGraphiql();
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': page.length });
      return res.end(page);
    }
    const format = negotiateFormat(req.headers.accept);
    if (!format)
      return refuse(
        res,
        406,
        'Nothing the Accept header allows is served: application/json, application/graphql-response+json, or text/event-stream.',
      );
    const params = admitted.body ? bodyParams(admitted.body) : queryStringParams(url);
    if (typeof params === 'string') return refuse(res, 400, params);
    const judged = judge(params, method, format);
    if (judged.operation) {
      labels.operation = judged.operation.operation;
      req.served?.operation(judged.operation);
    }
    if (!('document' in judged)) {
      labels.outcome = 'error';
      return answer(res, format, judged.status, JSON.stringify({ errors: judged.errors.map(mask) }), judged.headers);
    }
    if (method === 'HEAD') {
      res.writeHead(200, { 'content-type': format === 'sse' ? 'text/event-stream' : 'application/json; charset=utf-8' });
      return res.end();
    }
    const args = {
      schema,
      document: judged.document,
      operationName: params.operationName,
      variableValues: params.variables,
      // Whether introspection is on travels with the request: a subgraph's `_service { sdl }` follows it.
      contextValue: { ...options.context(admitted.access ?? OPEN_ACCESS, { trace: traceOf(req) }), introspection: limits.introspection },
    };
    if (judged.operation.operation !== OperationTypeNode.SUBSCRIPTION) return answer(res, format, 200, json(await execute(args), labels));
    // Its stream never ends by itself: a shutdown cuts it rather than wait for it.
    markSubscription(req);
    const results = await subscribe(args);
    if (Symbol.asyncIterator in results) return streamEvents(res, results, (result) => json(result, labels));
    return answer(res, format, 200, json(results, labels));
  };

  return (req: RequestWithServed, res) => {
    if (options.tracing) req.served = options.tracing.serve(req, res, '/graphql');
    const labels: Labels = { operation: 'other', outcome: 'ok' };
    if (metrics) timeGraphqlRequest(metrics.graphqlDuration, res, labels);
    handle(req, res, labels).catch((error: unknown) => {
      options.logger.error({ err: error }, 'GraphQL request failed');
      answerUnexpectedFailure(res);
    });
  };
}
