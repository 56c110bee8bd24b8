import type * as OtelApi from '@opentelemetry/api';
import type { Attributes, Span, Tracer } from '@opentelemetry/api';
import { Kind, type OperationDefinitionNode } from 'graphql';
import type { MessagingPeer, OutgoingMessage } from '@stockflow/contracts';
import type { Logger } from '../logger.ts';
import { formatTraceparent, parseTraceparent, TRACEPARENT_HEADER, type TraceContext } from './context.ts';
import type { OtlpProtocol, Tracing } from './types.ts';

// Attribute names of the OpenTelemetry semantic conventions, written out: the messaging and
// GraphQL ones are still incubating in @opentelemetry/semantic-conventions, whose advice is to
// copy such names, and importing the package for the stable ones would load all of it. The names
// are those of its release 1.45, none of them deprecated there (it replaced `messaging.system`,
// `messaging.rabbitmq.destination.routing_key`, `messaging.rabbitmq.message.delivery_tag` and
// `peer.service` with the names below).
const MESSAGING_SYSTEM_NAME = 'messaging.system.name';
const MESSAGING_OPERATION_TYPE = 'messaging.operation.type';
const MESSAGING_OPERATION_NAME = 'messaging.operation.name';
const MESSAGING_DESTINATION_NAME = 'messaging.destination.name';
const MESSAGING_SUBSCRIPTION_NAME = 'messaging.destination.subscription.name';
const MESSAGING_MESSAGE_ID = 'messaging.message.id';
const RABBITMQ_ROUTING_KEY = 'rabbitmq.destination.routing_key';
const RABBITMQ_DELIVERY_TAG = 'rabbitmq.message.delivery_tag';
const GRAPHQL_OPERATION_TYPE = 'graphql.operation.type';
const GRAPHQL_OPERATION_NAME = 'graphql.operation.name';
const HTTP_REQUEST_METHOD = 'http.request.method';
const HTTP_ROUTE = 'http.route';
const HTTP_RESPONSE_STATUS_CODE = 'http.response.status_code';
const URL_FULL = 'url.full';
const URL_PATH = 'url.path';
const URL_SCHEME = 'url.scheme';
const SERVER_ADDRESS = 'server.address';
const SERVER_PORT = 'server.port';
const SERVER_SERVICE_NAME = 'server.service.name';
const ERROR_TYPE = 'error.type';
const SERVICE_NAME = 'service.name';

/**
 * The OpenTelemetry SDK, loaded only when tracing is on (imported at run time: a bundle would
 * otherwise load every package at start). No global provider or context manager is registered:
 * spans are started with their parent given explicitly (the services hand trace contexts along
 * themselves), and each service of a process has a provider, so a service name, of its own. The SDK
 * reads the standard variables itself: the exporter its endpoint, headers, timeout and compression
 * (OTEL_EXPORTER_OTLP_*), the provider its sampler (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG)
 * and span limits, the batch processor OTEL_BSP_*.
 */
export async function createTracing(service: string, logger: Logger, protocol: OtlpProtocol): Promise<Tracing> {
  const [api, { BasicTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, resources] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace-base'),
    // Only the protocol's exporter is loaded: gRPC's brings @grpc/grpc-js, which the others do without.
    protocol === 'grpc'
      ? import('@opentelemetry/exporter-trace-otlp-grpc')
      : protocol === 'http/json'
        ? import('@opentelemetry/exporter-trace-otlp-http')
        : import('@opentelemetry/exporter-trace-otlp-proto'),
    import('@opentelemetry/resources'),
  ]);
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (envDetector) override the service's own name.
  const resource = resources
    .defaultResource()
    .merge(resources.resourceFromAttributes({ [SERVICE_NAME]: service }))
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  const provider = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())] });
  // Failed exports and dropped spans are reported only through OpenTelemetry's diagnostic logger,
  // silent by default. It is one per process: the services of a process log through the last.
  const warn = (message: string, ...args: unknown[]) => logger.warn({ args }, `tracing: ${message}`);
  api.diag.setLogger(
    { error: warn, warn, info: () => undefined, debug: () => undefined, verbose: () => undefined },
    { logLevel: api.DiagLogLevel.WARN, suppressOverrideMessage: true },
  );
  // A flush of a large backlog can fail (the exporter's limit on concurrent exports): the spans
  // are lost, and the shutdown goes on.
  const shutdown = () => provider.shutdown().catch((err: unknown) => logger.warn({ err }, 'tracing: the last spans were not exported'));
  return tracingWith(api, provider.getTracer('@stockflow/platform'), shutdown);
}

type Api = typeof OtelApi;

/**
 * The attributes naming the broker of a messaging span; the routing key is RabbitMQ's attribute,
 * on RabbitMQ's spans only (the in-process transport routes alike, but is not RabbitMQ).
 */
function broker(via: MessagingPeer | undefined, routingKey: string): Attributes {
  if (!via) return {};
  return {
    [MESSAGING_SYSTEM_NAME]: via.system,
    ...(via.address !== undefined ? { [SERVER_ADDRESS]: via.address, [SERVER_PORT]: via.port } : {}),
    ...(via.system === 'rabbitmq' ? { [RABBITMQ_ROUTING_KEY]: routingKey } : {}),
  };
}

/** The operation's own name, else its only root field (`mutation { createOrder ... }`), else nothing. */
function operationName(operation: OperationDefinitionNode): string | undefined {
  if (operation.name) return operation.name.value;
  const [only, ...more] = operation.selectionSet.selections;
  return only?.kind === Kind.FIELD && more.length === 0 ? only.name.value : undefined;
}

function tracingWith(api: Api, tracer: Tracer, shutdown: () => Promise<void>): Tracing {
  const { SpanKind, SpanStatusCode, TraceFlags, ROOT_CONTEXT, trace } = api;
  const parentContext = (parent: TraceContext | undefined) =>
    parent
      ? trace.setSpanContext(ROOT_CONTEXT, {
          traceId: parent.traceId,
          spanId: parent.spanId,
          traceFlags: parent.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
          isRemote: true,
        })
      : ROOT_CONTEXT;

  function contextOf(span: Span): TraceContext {
    const { traceId, spanId, traceFlags } = span.spanContext();
    return { traceId, spanId, sampled: (traceFlags & TraceFlags.SAMPLED) !== 0, traced: true };
  }

  function fail(span: Span, error: unknown) {
    const name = error instanceof Error ? error.constructor.name : 'Error';
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    span.setAttribute(ERROR_TYPE, name);
  }

  return {
    serve(req, res, route) {
      const method = req.method ?? 'GET';
      const path = (req.url ?? '/').split('?')[0] as string;
      // A path the handler does not serve matched no route: the span is named by its method alone.
      const routed = path === route;
      const span = tracer.startSpan(
        routed ? `${method} ${route}` : method,
        {
          kind: SpanKind.SERVER,
          attributes: {
            [HTTP_REQUEST_METHOD]: method,
            [URL_SCHEME]: (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http',
            [URL_PATH]: path,
            ...(routed ? { [HTTP_ROUTE]: route } : {}),
          },
        },
        parentContext(parseTraceparent(req.headers[TRACEPARENT_HEADER])),
      );
      // 'close' comes after 'finish', and also when the client went away first.
      res.once('close', () => {
        span.setAttribute(HTTP_RESPONSE_STATUS_CODE, res.statusCode);
        if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      });
      return {
        trace: contextOf(span),
        operation(operation) {
          const name = operationName(operation);
          span.updateName(name ? `${operation.operation} ${name}` : operation.operation);
          span.setAttribute(GRAPHQL_OPERATION_TYPE, operation.operation);
          if (operation.name) span.setAttribute(GRAPHQL_OPERATION_NAME, operation.name.value);
        },
      };
    },

    calling(parent, { method, url, peer }) {
      const target = new URL(url);
      const span = tracer.startSpan(
        `${method} ${peer}`,
        {
          kind: SpanKind.CLIENT,
          attributes: {
            [HTTP_REQUEST_METHOD]: method,
            [URL_FULL]: `${target.origin}${target.pathname}`,
            [SERVER_ADDRESS]: target.hostname,
            [SERVER_PORT]: Number(target.port || (target.protocol === 'https:' ? 443 : 80)),
            [SERVER_SERVICE_NAME]: peer,
          },
        },
        parentContext(parent),
      );
      return {
        trace: contextOf(span),
        answered(status) {
          span.setAttribute(HTTP_RESPONSE_STATUS_CODE, status);
          if (status >= 400) {
            span.setStatus({ code: SpanStatusCode.ERROR });
            span.setAttribute(ERROR_TYPE, String(status));
          }
          span.end();
        },
        failed(error) {
          fail(span, error);
          span.end();
        },
        cancelled() {
          span.addEvent('cancelled');
          span.end();
        },
      };
    },

    publishing(messages, via) {
      // The traceparent stored with the event is the span that caused it (the request, or the
      // delivery being applied): the publish continues that trace, whenever and by whichever
      // instance's relay it happens. An event nothing traced caused has none: its publish is the
      // root of a trace of its own.
      const spans = messages.map((m) =>
        tracer.startSpan(
          m.exchange ? `publish ${m.exchange}` : 'publish',
          {
            kind: SpanKind.PRODUCER,
            attributes: {
              ...broker(via, m.routingKey),
              [MESSAGING_OPERATION_TYPE]: 'send',
              [MESSAGING_OPERATION_NAME]: 'publish',
              [MESSAGING_DESTINATION_NAME]: m.exchange,
              [MESSAGING_MESSAGE_ID]: m.messageId,
            },
          },
          parentContext(parseTraceparent(m.headers?.[TRACEPARENT_HEADER])),
        ),
      );
      const sent = messages.map((m, i) => ({
        ...m,
        headers: { ...m.headers, [TRACEPARENT_HEADER]: formatTraceparent(contextOf(spans[i] as Span)) },
      }));
      return {
        messages: sent,
        confirmed: () => spans.forEach((span) => span.end()),
        failed(error, only) {
          spans.forEach((span, i) => {
            if (!only || only.has(sent[i] as OutgoingMessage)) fail(span, error);
            span.end();
          });
        },
      };
    },

    processing(queue, messages, via) {
      const spans = messages.map((m) =>
        tracer.startSpan(
          `process ${queue}`,
          {
            kind: SpanKind.CONSUMER,
            // One span per message: messaging.batch.message_count is for spans of a batch, which these are not.
            attributes: {
              ...broker(via, m.routingKey),
              [MESSAGING_OPERATION_TYPE]: 'process',
              [MESSAGING_OPERATION_NAME]: 'process',
              [MESSAGING_DESTINATION_NAME]: m.exchange,
              [MESSAGING_SUBSCRIPTION_NAME]: queue,
              ...(m.messageId ? { [MESSAGING_MESSAGE_ID]: m.messageId } : {}),
              ...(m.deliveryTag !== undefined && via?.system === 'rabbitmq' ? { [RABBITMQ_DELIVERY_TAG]: m.deliveryTag } : {}),
            },
          },
          parentContext(parseTraceparent(m.headers[TRACEPARENT_HEADER])),
        ),
      );
      return {
        traces: spans.map(contextOf),
        applied: () => spans.forEach((span) => span.end()),
        failed(error) {
          spans.forEach((span) => {
            fail(span, error);
            span.end();
          });
        },
      };
    },

    shutdown,
  };
}
