import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayPlugin } from '@graphql-hive/gateway-runtime';
import type { AsyncFetchFn } from '@graphql-tools/executor-http';
import { getOperationAST, type DocumentNode } from 'graphql';
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import {
  formatTraceparent,
  graphqlRequestDuration,
  REQUEST_SECONDS_BUCKETS,
  timeGraphqlRequest,
  TRACEPARENT_HEADER,
  type ServedRequest,
  type Tracing,
} from '@stockflow/platform';

/**
 * The gateway's Prometheus metrics, served at its /metrics. Requests carry the services' metric
 * and labels (`service="gateway"` tells them apart), so the dashboards and alerts that read a
 * service's requests read the gateway's the same way; its subgraph requests are its own.
 */
export function createGatewayMetrics() {
  const registry = new Registry();
  registry.setDefaultLabels({ service: 'gateway' });
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    requestDuration: graphqlRequestDuration(registers),
    subgraphDuration: new Histogram({
      name: 'stockflow_gateway_subgraph_request_duration_seconds',
      help: "The gateway's requests to the services, by subgraph (orders, inventory) and outcome (ok; error: an HTTP error status; unreachable: no answer; cancelled: given up, the client having left), until the answer starts.",
      labelNames: ['subgraph', 'outcome'] as const,
      buckets: REQUEST_SECONDS_BUCKETS,
      registers,
    }),
  };
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
  const of = (context: unknown) => {
    const req = (context as { req?: IncomingMessage } | undefined)?.req;
    return req ? served.get(req) : undefined;
  };
  const operationOf = (args: { document: DocumentNode; operationName?: string | null | undefined; contextValue: unknown }) => {
    const state = of(args.contextValue);
    const operation = getOperationAST(args.document, args.operationName);
    if (!state || !operation) return;
    state.operation = operation.operation;
    state.span?.operation(operation);
  };

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
      const span = of(context)?.span;
      return span ? formatTraceparent(span.trace) : client;
    },

    /** Names the request's operation and its span, and counts an answer with errors as one. */
    plugin(): GatewayPlugin {
      return {
        onExecute: ({ args }) => operationOf(args),
        onSubscribe: ({ args }) => operationOf(args),
        onResultProcess({ result, serverContext }) {
          const state = of(serverContext);
          const results = Array.isArray(result) ? result : [result];
          if (state && results.some((r) => 'errors' in r && r.errors && r.errors.length > 0)) state.outcome = 'error';
        },
      };
    },

    /** The fetch of `subgraph`'s executor: each request a CLIENT span and a timing. */
    fetch(subgraph: string, fetch: AsyncFetchFn): AsyncFetchFn {
      return async (url, init, context, info) => {
        const call = tracing?.calling(of(context)?.span?.trace, { method: init?.method ?? 'POST', url, peer: subgraph });
        // executor-http hands its headers over as a plain object (the client's, as propagated).
        const sent = call
          ? { ...init, headers: { ...(init?.headers as Record<string, string>), [TRACEPARENT_HEADER]: formatTraceparent(call.trace) } }
          : init;
        const stop = metrics.subgraphDuration.startTimer({ subgraph });
        try {
          const response = await fetch(url, sent, context, info);
          stop({ outcome: response.status >= 400 ? 'error' : 'ok' });
          call?.answered(response.status);
          return response;
        } catch (error) {
          // Aborted because the client left (upstreamCancellation) or the gateway is closing: the
          // service did nothing wrong. (The gateway sets no timeout on its requests to the services.)
          if (init?.signal?.aborted) {
            stop({ outcome: 'cancelled' });
            call?.cancelled();
          } else {
            stop({ outcome: 'unreachable' });
            call?.failed(error);
          }
          throw error;
        }
      };
    },
  };
}
