import { z } from 'zod';
import { EVENTS, type EventSpec } from './asyncapi-events.ts';
import {
  ATTEMPTS_HEADER,
  DEAD_LETTER_REASON_HEADER,
  EVENT_ROUTES,
  JSON_CONTENT_TYPE,
  ORIGINAL_ROUTING_KEY_HEADER,
  QUEUE_CONSUMERS,
  QUEUE_TYPES,
  deadLetterRoute,
  exchanges,
  platformQueueFor,
  queueDeclarations,
  queues,
  topicMatches,
  type EventName,
  type EventPublisher,
  type QueueDeclaration,
  type QueueSpec,
  type QueueType,
} from './topology.ts';

/**
 * The event contract as an AsyncAPI 3 document (AMQP 0-9-1 bindings), built from the zod schemas
 * and the topology that producers and consumers run on, so that it cannot say anything else:
 * `npm run asyncapi` writes it to docs/asyncapi.yaml, and every service serves it at /asyncapi.json.
 */

const AMQP_BINDING_VERSION = '0.3.0';

/** Who sends and receives: one document for the platform, each operation named after its party. */
const PARTIES: Record<EventPublisher | 'operators', { name: string; description: string; stockflow: boolean }> = {
  orderService: { name: 'Order Service', description: 'Stockflow: takes orders and follows their stock and payment.', stockflow: true },
  inventoryService: {
    name: 'Inventory Service',
    description: 'Stockflow: holds the stock; reserves, releases and sells it.',
    stockflow: true,
  },
  paymentService: {
    name: 'payment service',
    description: "Another team's: takes the money for orders, and gives it back.",
    stockflow: false,
  },
  operators: { name: 'operators', description: 'Inspect and replay parked messages (`npm run dlq`).', stockflow: false },
};
type Party = keyof typeof PARTIES;

const PARKED_MESSAGE = 'ParkedMessage';
const EVENT_HEADERS = 'EventHeaders';

const ref = (...path: string[]) => ({ $ref: `#/${path.join('/')}` });

/** A payload as consumers accept it (zod's input: optional fields may be absent, unknown extras are allowed). */
function payloadSchema(schema: z.ZodType): Record<string, unknown> {
  const json: Record<string, unknown> = z.toJSONSchema(schema, { target: 'draft-07', io: 'input' });
  // The document's schema format (AsyncAPI's, a superset of draft-07) applies; a $schema would only repeat it.
  delete json.$schema;
  return json;
}

const exchangeBinding = (name: string) => {
  const spec = exchanges.find((e) => e.exchange === name);
  if (!spec) throw new Error(`exchange ${name} is not in the topology`);
  return {
    is: 'routingKey',
    exchange: { name, type: spec.type, durable: spec.durable, autoDelete: false },
    bindingVersion: AMQP_BINDING_VERSION,
  };
};

/**
 * A queue as every service declares it, with its arguments for each AMQP_QUEUE_TYPE and what it is
 * bound to (extensions: the AMQP binding has no field for either).
 */
const queueBinding = (declared: (type: QueueType) => QueueDeclaration, bindings: { exchange: string; routingKey: string }[]) => {
  const { queue, durable } = declared('quorum');
  return {
    is: 'queue',
    queue: { name: queue, durable, exclusive: false, autoDelete: false },
    'x-queue-arguments': Object.fromEntries(QUEUE_TYPES.map((type) => [type, declared(type).arguments])),
    'x-bindings': bindings,
    bindingVersion: AMQP_BINDING_VERSION,
  };
};

const eventNames = Object.keys(EVENT_ROUTES) as EventName[];

/** The events a topic binding routes to a queue. */
const eventsRoutedTo = (spec: QueueSpec) =>
  eventNames.filter((name) =>
    spec.bindings.some((b) => b.exchange === EVENT_ROUTES[name].exchange && topicMatches(b.routingKey, EVENT_ROUTES[name].routingKey)),
  );

/**
 * How Stockflow's services publish (platform/messaging/amqp.ts): persistent, timestamped, and mandatory exactly where a queue of the
 * platform is bound for the message, so that the broker returns it when that queue is missing.
 */
const stockflowPublish = (exchange: string, routingKey: string) => ({
  amqp: { deliveryMode: 2, mandatory: platformQueueFor(exchange, routingKey), timestamp: true, bindingVersion: AMQP_BINDING_VERSION },
});

const messagesOf = (names: string[]) => Object.fromEntries(names.map((n) => [n, ref('components', 'messages', n)]));
const tagOf = (party: Party) => [{ name: PARTIES[party].name }];

/** The AsyncAPI 3 document of every event, exchange, queue (with its retry and dead-letter queues) and binding. */
export function asyncApiDocument() {
  const schemas: Record<string, unknown> = {
    [EVENT_HEADERS]: {
      type: 'object',
      properties: {
        traceparent: {
          type: 'string',
          description: 'W3C trace context: the events a message causes carry a span of the same trace. Optional.',
        },
        [ATTEMPTS_HEADER]: { type: 'string', description: 'On a message sent back from a retry queue: how many times handling it failed.' },
        [ORIGINAL_ROUTING_KEY_HEADER]: { type: 'string', description: 'On a retried message: the routing key it first arrived with.' },
      },
    },
  };
  const messages: Record<string, unknown> = {
    [PARKED_MESSAGE]: {
      name: PARKED_MESSAGE,
      title: 'A parked message',
      summary:
        'A message its consumer gave up on (not JSON, not the contract, or its handler failed every attempt), with why. ' +
        'A body that is not JSON is kept byte for byte.',
      headers: {
        type: 'object',
        required: [DEAD_LETTER_REASON_HEADER, ORIGINAL_ROUTING_KEY_HEADER],
        properties: {
          [DEAD_LETTER_REASON_HEADER]: { type: 'string', description: 'Why it was parked.' },
          [ORIGINAL_ROUTING_KEY_HEADER]: { type: 'string', description: 'The routing key it arrived with.' },
        },
      },
      payload: { description: 'The body as its consumer received it.' },
    },
  };
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};

  for (const name of eventNames) {
    const event: EventSpec<EventName> = EVENTS[name];
    const { exchange, routingKey, publisher } = EVENT_ROUTES[name];
    // An example the contract would refuse stops the generation (and fails the tests).
    event.schema.parse(event.example);
    schemas[name] = payloadSchema(event.schema);
    messages[name] = {
      name,
      title: name,
      summary: event.summary,
      contentType: JSON_CONTENT_TYPE,
      headers: ref('components', 'schemas', EVENT_HEADERS),
      payload: ref('components', 'schemas', name),
      correlationId: { description: 'The order it is about.', location: '$message.payload#/order_id' },
      examples: [{ name: 'example', payload: event.example }],
    };
    const channel = `${exchange}.${routingKey}`;
    channels[channel] = {
      address: routingKey,
      title: `${exchange} / ${routingKey}`,
      description: `${name}, published on the \`${exchange}\` exchange with the routing key \`${routingKey}\`.`,
      messages: messagesOf([name]),
      bindings: { amqp: exchangeBinding(exchange) },
    };
    operations[`${publisher}.send.${name}`] = {
      action: 'send',
      channel: ref('channels', channel),
      summary: `The ${PARTIES[publisher].name} publishes ${name}.`,
      messages: [ref('channels', channel, 'messages', name)],
      tags: tagOf(publisher),
      bindings: PARTIES[publisher].stockflow
        ? stockflowPublish(exchange, routingKey)
        : { amqp: { deliveryMode: 2, bindingVersion: AMQP_BINDING_VERSION } },
    };
  }

  for (const [key, spec] of Object.entries(queues)) {
    const consumer = QUEUE_CONSUMERS[key as keyof typeof queues];
    const routed = eventsRoutedTo(spec);
    const queueChannel = `queue.${spec.queue}`;
    channels[queueChannel] = {
      address: spec.queue,
      title: spec.queue,
      description: `Consumed by the ${PARTIES[consumer].name}; bound to ${spec.bindings.map((b) => `\`${b.exchange}\` / \`${b.routingKey}\``).join(', ')}.`,
      messages: messagesOf(routed),
      bindings: { amqp: queueBinding((type) => queueDeclarations(spec, type).main, spec.bindings) },
    };
    operations[`${consumer}.receive.${key}`] = {
      action: 'receive',
      channel: ref('channels', queueChannel),
      summary: `The ${PARTIES[consumer].name} consumes ${spec.queue}.`,
      messages: routed.map((n) => ref('channels', queueChannel, 'messages', n)),
      tags: tagOf(consumer),
      bindings: { amqp: { ack: true, bindingVersion: AMQP_BINDING_VERSION } },
    };

    spec.retryQueues.forEach((retry, i) => {
      const channel = `queue.${retry.queue}`;
      channels[channel] = {
        address: retry.queue,
        title: retry.queue,
        description:
          `A failed message of \`${spec.queue}\` waits here ${retry.delayMs} ms (the queue's TTL), then goes back to \`${spec.queue}\`. ` +
          'Sent to by name (the default exchange); nothing consumes it.',
        messages: messagesOf(routed),
        bindings: { amqp: queueBinding((type) => queueDeclarations(spec, type).retries[i] as QueueDeclaration, []) },
      };
      if (!PARTIES[consumer].stockflow) return;
      operations[`${consumer}.retry.${key}.${retry.delayMs / 1_000}s`] = {
        action: 'send',
        channel: ref('channels', channel),
        summary: `The ${PARTIES[consumer].name} sends a message whose handling failed to wait ${retry.delayMs} ms before its next attempt.`,
        messages: routed.map((n) => ref('channels', channel, 'messages', n)),
        tags: tagOf(consumer),
        bindings: stockflowPublish('', retry.queue),
      };
    });

    const route = deadLetterRoute(spec);
    const parkChannel = `${route.exchange}.${route.routingKey}`;
    channels[parkChannel] = {
      address: route.routingKey,
      title: `${route.exchange} / ${route.routingKey}`,
      description: `Where \`${spec.queue}\`'s messages are parked: routed to \`${spec.deadLetterQueue}\`.`,
      messages: messagesOf([PARKED_MESSAGE]),
      bindings: { amqp: exchangeBinding(route.exchange) },
    };
    if (PARTIES[consumer].stockflow) {
      operations[`${consumer}.park.${key}`] = {
        action: 'send',
        channel: ref('channels', parkChannel),
        summary: `The ${PARTIES[consumer].name} parks a message of ${spec.queue} it gives up on, then acknowledges it.`,
        messages: [ref('channels', parkChannel, 'messages', PARKED_MESSAGE)],
        tags: tagOf(consumer),
        bindings: stockflowPublish(route.exchange, route.routingKey),
      };
    }

    const dlqChannel = `queue.${spec.deadLetterQueue}`;
    channels[dlqChannel] = {
      address: spec.deadLetterQueue,
      title: spec.deadLetterQueue,
      description: `\`${spec.queue}\`'s parked messages, kept for operators.`,
      messages: messagesOf([PARKED_MESSAGE]),
      bindings: { amqp: queueBinding((type) => queueDeclarations(spec, type).deadLetter, [route]) },
    };
    operations[`operators.receive.${key}.dlq`] = {
      action: 'receive',
      channel: ref('channels', dlqChannel),
      summary: `Operators inspect and replay ${spec.deadLetterQueue}.`,
      messages: [ref('channels', dlqChannel, 'messages', PARKED_MESSAGE)],
      tags: tagOf('operators'),
      bindings: { amqp: { ack: true, bindingVersion: AMQP_BINDING_VERSION } },
    };
  }

  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Stockflow events',
      version: '1.0.0',
      description: [
        "The events between Stockflow (the Order and Inventory services) and other teams' services over RabbitMQ, and the topology",
        'they travel on: every exchange, queue (with its retry and dead-letter queues) and binding. Generated from the code',
        '(`npm run asyncapi`); docs/events.md is the readable guide.',
        '',
        'Operations are named after who performs them (tags: the Order Service, the Inventory Service, the payment service, operators).',
        'Delivery is at least once and every consumer is idempotent. A consumer accepts exactly the documented fields and ignores',
        'unknown extras; producers may add `event_id` (also the AMQP `message_id`) and `occurred_at` (ISO-8601 UTC).',
        "Each queue is declared with the arguments in its binding's `x-queue-arguments`, for the queue type of the deployment",
        '(`AMQP_QUEUE_TYPE`: quorum by default, or classic); a declaration with other arguments is refused by the broker, so',
        'declare a queue passively when you only need it to exist.',
      ].join('\n'),
      tags: Object.values(PARTIES).map((p) => ({ name: p.name, description: p.description })),
    },
    defaultContentType: JSON_CONTENT_TYPE,
    servers: {
      rabbitmq: {
        host: '{host}:{port}',
        protocol: 'amqp',
        protocolVersion: '0.9.1',
        description: 'RabbitMQ 3.10 or newer, at `AMQP_URL`.',
        variables: { host: { default: 'localhost' }, port: { default: '5672' } },
      },
    },
    channels,
    operations,
    components: { schemas, messages },
  };
}
