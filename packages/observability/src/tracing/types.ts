import type { IncomingMessage as HttpRequest, ServerResponse } from 'node:http';
import type { OperationDefinitionNode } from 'graphql';
import type { IncomingMessage, MessagingPeer, OutgoingMessage } from '@stockflow/contracts';
import type { TraceContext } from './context.ts';

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
