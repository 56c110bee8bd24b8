/*
 * The envelope a message travels in on any transport (RabbitMQ, or the embedded in-process one):
 * here, beside the events it carries, so tracing can stamp and read it without depending on the
 * messaging package that moves it.
 */

/** One message to publish. A Buffer or string body goes out as it is; anything else as JSON. */
export interface OutgoingMessage {
  exchange: string;
  routingKey: string;
  messageId: string;
  body: unknown;
  headers?: Record<string, string> | undefined;
}

export interface IncomingMessage {
  /** Already JSON-decoded where the transport could; a Buffer or string otherwise. */
  body: unknown;
  exchange: string;
  routingKey: string;
  messageId: string | undefined;
  headers: Record<string, unknown>;
  redelivered: boolean;
  /** RabbitMQ's number of the delivery on its channel (the AMQP transport's only). */
  deliveryTag?: number;
}

/**
 * The broker a transport talks to, as its messaging spans name it (OpenTelemetry's
 * `messaging.system.name`, `server.address`, `server.port`): the address only where it is one.
 */
export interface MessagingPeer {
  system: string;
  address?: string | undefined;
  port?: number | undefined;
}
