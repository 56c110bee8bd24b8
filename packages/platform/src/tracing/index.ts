import type { IncomingMessage as HttpRequest, ServerResponse } from 'node:http';
import type { OperationDefinitionNode } from 'graphql';
import { safeUrl } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { IncomingMessage, MessagingPeer, OutgoingMessage } from '../messaging/transport.ts';
import type { TraceContext } from './context.ts';

export * from './context.ts';

/** The SERVER span of one HTTP request. */
export interface ServedRequest {
  /** The span's context: what the request causes (its events) continues it. */
  trace: TraceContext;
  /** Names the span after the GraphQL operation, once it is known. */
  operation(operation: OperationDefinitionNode): void;
}

/** The CLIENT span of one HTTP request to another service. */
export interface Calling {
  /** The span's context: the `traceparent` the request carries, so the callee's spans are its children. */
  trace: TraceContext;
  answered(status: number): void;
  failed(error: unknown): void;
  /** Given up by the caller (the client that caused it left): no answer, and no fault of the callee. */
  cancelled(): void;
}

/** The PRODUCER spans of messages being published, one each. */
export interface Publishing {
  /** The messages to send, in the same order: each one's traceparent is now its publish span. */
  messages: OutgoingMessage[];
  confirmed(): void;
  /** The publish failed: for the messages of `only` (of `messages`) when given, for all otherwise. */
  failed(error: unknown, only?: ReadonlySet<OutgoingMessage>): void;
}

/** The CONSUMER spans of a batch of deliveries being applied, one each. */
export interface Processing {
  /** The process span of each delivery, in the same order: what applying it causes continues it. */
  traces: TraceContext[];
  applied(): void;
  failed(error: unknown): void;
}

/**
 * OpenTelemetry tracing of one service: its GraphQL requests, the events its outbox publishes and
 * the deliveries its consumers apply, in the W3C trace context that HTTP requests and messages
 * carry, so that one order is one trace across both services and the broker. Absent (undefined)
 * when tracing is off: the callers then do exactly what they did without it.
 */
export interface Tracing {
  /** `route` is the path the handler serves (its GraphQL endpoint): a request to another path is not given it as its route. */
  serve(req: HttpRequest, res: ServerResponse, route: string): ServedRequest;
  /** A request to `peer` (the gateway's to a subgraph), within `parent` (the request that caused it). */
  calling(parent: TraceContext | undefined, request: { method: string; url: string; peer: string }): Calling;
  /** `via` is the transport's broker, as its spans name it. */
  publishing(messages: readonly OutgoingMessage[], via: MessagingPeer | undefined): Publishing;
  processing(queue: string, messages: readonly IncomingMessage[], via: MessagingPeer | undefined): Processing;
  /** Exports the spans still buffered, then stops. */
  shutdown(): Promise<void>;
}

/** How spans travel: OTLP over HTTP, as protobuf (the specification's default) or JSON, or over gRPC. */
export type OtlpProtocol = 'http/protobuf' | 'http/json' | 'grpc';

const PROTOCOLS: readonly string[] = ['http/protobuf', 'http/json', 'grpc'] satisfies OtlpProtocol[];

/**
 * The protocol OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL names; an error for
 * a value the specification does not define, so a typo fails at start rather than lose every span.
 */
export function otlpProtocol(env: NodeJS.ProcessEnv = process.env): OtlpProtocol {
  const variable = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const value = env[variable]?.trim() || 'http/protobuf';
  if (PROTOCOLS.includes(value)) return value as OtlpProtocol;
  throw new Error(`${variable}=${value} is not an OTLP protocol: use http/protobuf (the default), http/json or grpc`);
}

/**
 * Tracing for `service` when an OTLP endpoint is configured (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
 * OTEL_EXPORTER_OTLP_ENDPOINT, and neither OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none);
 * undefined otherwise, without loading any of OpenTelemetry. Throws on an OTLP protocol it cannot
 * speak (otlpProtocol).
 */
export async function startTracing(service: string, logger: Logger): Promise<Tracing | undefined> {
  const env = process.env;
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint || env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none') return undefined;
  const protocol = otlpProtocol(env);
  const { createTracing } = await import('./otel.ts');
  const tracing = await createTracing(service, logger, protocol);
  logger.info(
    { endpoint: safeUrl(endpoint), protocol, sampler: env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on' },
    `tracing on: spans exported over OTLP/${protocol === 'grpc' ? 'gRPC' : 'HTTP'}`,
  );
  return tracing;
}
