import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayPlugin } from '@graphql-hive/gateway-runtime';
import type { AsyncFetchFn } from '@graphql-tools/executor-http';
import { getOperationAST, type DocumentNode, type OperationDefinitionNode } from 'graphql';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import {
  formatTraceparent,
  graphqlRequestDuration,
  REQUEST_SECONDS_BUCKETS,
  timeGraphqlRequest,
  TRACEPARENT_HEADER,
  type ServedRequest,
  type Tracing,
} from '@stockflow/observability';
import { DRAINING_HEADER } from '@stockflow/platform';
import { failureOfError, failureOfStatus, type ServiceFailure } from './failures.ts';

/** What a request to a service is counted as (subgraphDuration's `outcome`). */
const SUBGRAPH_OUTCOMES = ['ok', 'error', 'draining', 'unreachable', 'unknown', 'cancelled'] as const;

/**
 * The gateway's Prometheus metrics, served at its /metrics. Requests carry the services' metric
 * and labels (`service="gateway"` tells them apart), so the dashboards and alerts that read a
 * service's requests read the gateway's the same way; its subgraph requests are its own.
 * `subgraphs` (the services' names in the supergraph) have their series from the start, at zero:
 * a series born at its first failure is already at 1, and rate() never sees that first one.
 */
export function createGatewayMetrics(subgraphs: readonly string[] = []) {
  const registry = new Registry();
  registry.setDefaultLabels({ service: 'gateway' });
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const metrics = {
    registry,
    requestDuration: graphqlRequestDuration(registers),
    subgraphDuration: new Histogram({
      name: 'stockflow_gateway_subgraph_request_duration_seconds',
      help: "The gateway's requests to the services, by subgraph (orders, inventory) and outcome, until the answer starts: ok; error: the service's own HTTP error status; draining: an instance shutting down refused it unread (a rolling update, a scale-down); unreachable: the connection was refused; unknown: no answer, or a 502-504 from what stands in front of the service, so it may have been acted on; cancelled: given up, the client having left. A body cut after the answer started is not counted here.",
      labelNames: ['subgraph', 'outcome'] as const,
      buckets: REQUEST_SECONDS_BUCKETS,
      registers,
    }),
    subgraphStreamsCut: new Counter({
      name: 'stockflow_gateway_subgraph_streams_cut_total',
      help: "Subscription streams from a service cut mid-way (the subscriber was told the service stopped answering), by subgraph; the stream's request counted ok when it began.",
      labelNames: ['subgraph'] as const,
      registers,
    }),
  };
  for (const subgraph of subgraphs) {
    for (const outcome of SUBGRAPH_OUTCOMES) metrics.subgraphDuration.zero({ subgraph, outcome });
    metrics.subgraphStreamsCut.inc({ subgraph }, 0);
  }
  return metrics;
}

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;

/** What the gateway knows of one client request, for its span and its metrics. */
interface Served {
  /** The gateway's SERVER span, with tracing on. */
  span: ServedRequest | undefined;
  operation: string;
  outcome: 'ok' | 'error';
}

/**
 * The gateway's spans and metrics. Each client request is a SERVER span (continuing the client's
 * traceparent) and each of its requests to a service a CLIENT span, whose context is the
 * traceparent the service receives; each is counted and timed.
 */
export function gatewayObservability(options: { tracing: Tracing | undefined; metrics: GatewayMetrics }) {
  const { tracing, metrics } = options;
  const served = new WeakMap<IncomingMessage, Served>();
  const ofContext = (context: unknown) => {
    const req = (context as { req?: IncomingMessage } | undefined)?.req;
    return req ? served.get(req) : undefined;
  };
  const name = (state: Served | undefined, operation: OperationDefinitionNode | null | undefined) => {
    if (!state || !operation) return;
    state.operation = operation.operation;
    state.span?.operation(operation);
  };
  const operationOf = (args: { document: DocumentNode; operationName?: string | null | undefined; contextValue: unknown }) =>
    name(ofContext(args.contextValue), getOperationAST(args.document, args.operationName));

  return {
    /** Starts what a client request is followed by; the first thing the handler does. */
    serve(req: IncomingMessage, res: ServerResponse): void {
      const state: Served = { span: tracing?.serve(req, res, '/graphql'), operation: 'other', outcome: 'ok' };
      served.set(req, state);
      timeGraphqlRequest(metrics.requestDuration, res, state);
    },

    /**
     * The traceparent the gateway forwards: its own SERVER span's with tracing on (each subgraph
     * request replaces it with its CLIENT span's, in `fetch`), the client's as it came otherwise.
     */
    traceparent(context: unknown, client: string | null): string | null {
      const span = ofContext(context)?.span;
      return span ? formatTraceparent(span.trace) : client;
    },

    /** Names the request's operation and its span, and counts an answer with errors as one. */
    plugin(): GatewayPlugin {
      return {
        onExecute: ({ args }) => operationOf(args),
        onSubscribe: ({ args }) => operationOf(args),
        onResultProcess({ result, serverContext }) {
          const state = ofContext(serverContext);
          const results = Array.isArray(result) ? result : [result];
          if (state && results.some((r) => 'errors' in r && r.errors && r.errors.length > 0)) state.outcome = 'error';
        },
      };
    },

    /** Names a request the gateway answers itself (forwarded whole) by its operation, as `plugin` does for the runtime's. */
    named(req: IncomingMessage, operation: OperationDefinitionNode): void {
      name(served.get(req), operation);
    },

    /** Counts a request the gateway answers itself as an error. */
    erred(req: IncomingMessage): void {
      const state = served.get(req);
      if (state) state.outcome = 'error';
    },

    /**
     * One request to `subgraph` on behalf of `source` (the client request, or the runtime's context):
     * its CLIENT span, whose traceparent the service gets (`client`'s own, as it came, untraced),
     * and its timing, ended by what became of it.
     */
    call(subgraph: string, source: unknown, request: { method: string; url: string; client: string | undefined }) {
      const state = served.get(source as IncomingMessage) ?? ofContext(source);
      const span = tracing?.calling(state?.span?.trace, { method: request.method, url: request.url, peer: subgraph });
      const stop = metrics.subgraphDuration.startTimer({ subgraph });
      return {
        traceparent: span ? formatTraceparent(span.trace) : request.client,
        /** `draining`: the answer carries DRAINING_HEADER (a 503 of an instance that refused it unread). */
        answered(status: number, draining: boolean) {
          const failure = failureOfStatus(status, draining);
          // A draining instance's refusal (told SUBGRAPH_UNREACHABLE) is routine in a rolling update
          // or a scale-down: counted apart, so that the unreachable alert does not page for it.
          stop({ outcome: failure === 'unreachable' ? 'draining' : (failure ?? (status >= 400 ? 'error' : 'ok')) });
          span?.answered(status);
        },
        /** Given up because the client left or the gateway is closing: the service did nothing wrong. */
        cancelled() {
          stop({ outcome: 'cancelled' });
          span?.cancelled();
        },
        /** No answer came: `failure` says whether the request may have reached the service. */
        failed(failure: Exclude<ServiceFailure, 'lost'>, error: unknown) {
          stop({ outcome: failure });
          span?.failed(error);
        },
      };
    },

    /** Counts a subscription stream from `subgraph` cut mid-way (its request was counted when the stream began). */
    cut(subgraph: string): void {
      metrics.subgraphStreamsCut.inc({ subgraph });
    },

    /** The fetch of `subgraph`'s executor in the runtime: each request a `call`. */
    fetch(subgraph: string, fetch: AsyncFetchFn): AsyncFetchFn {
      return async (url, init, context, info) => {
        // executor-http hands its headers over as a plain object (the client's, as propagated).
        const headers = init?.headers as Record<string, string> | undefined;
        const call = this.call(subgraph, context, { method: init?.method ?? 'POST', url, client: headers?.[TRACEPARENT_HEADER] });
        const sent = call.traceparent ? { ...init, headers: { ...headers, [TRACEPARENT_HEADER]: call.traceparent } } : init;
        try {
          const response = await fetch(url, sent, context, info);
          call.answered(response.status, response.headers.has(DRAINING_HEADER));
          return response;
        } catch (error) {
          // Aborted because the client left (upstreamCancellation) or the gateway is closing. (The
          // gateway sets no timeout on its requests to the services.)
          if (init?.signal?.aborted) call.cancelled();
          else call.failed(failureOfError(error), error);
          throw error;
        }
      };
    },
  };
}
