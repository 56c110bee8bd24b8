import { z } from 'zod';
import {
  BackorderFilled,
  OrderCancelled,
  OrderConfirmed,
  OrderCreated,
  OrderFulfilled,
  OrderPaid,
  PaymentFailed,
  PaymentSucceeded,
  RefundRequested,
  StockRejected,
  StockReleased,
  StockReserved,
} from './events.ts';
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

/** What the document says of an event besides its route (EVENT_ROUTES). */
interface EventSpec<Name extends EventName> {
  schema: z.ZodObject<{ event: z.ZodLiteral<Name> }>;
  summary: string;
  /** Checked against `schema` whenever the document is generated. */
  example: Record<string, unknown>;
}

const ORDER = 'ORD-12345';
const LINES = [{ product_id: 1, quantity: 2 }];
const meta = (eventId: string, occurredAt: string) => ({ event_id: eventId, occurred_at: occurredAt });

/** Each routed event (typed by the topology's routes, so a new one cannot be left out, nor given another's schema). */
const EVENTS: { [Name in EventName]: EventSpec<Name> } = {
  OrderCreated: {
    schema: OrderCreated,
    summary: 'An order was accepted and needs stock.',
    example: {
      event: 'OrderCreated',
      order_id: ORDER,
      items: LINES,
      ...meta('1b0c2c0e-5a43-4ad9-9f5c-6a2b0f0d8d31', '2026-11-27T09:30:00.000Z'),
    },
  },
  OrderConfirmed: {
    schema: OrderConfirmed,
    summary: 'Every line of the order is reserved; for notification, shipping and similar services.',
    example: {
      event: 'OrderConfirmed',
      order_id: ORDER,
      items: LINES,
      ...meta('2f1d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b', '2026-11-27T09:30:00.030Z'),
    },
  },
  OrderCancelled: {
    schema: OrderCancelled,
    summary: 'The order was cancelled (by the customer, an operator, an expired payment hold, or because stock was rejected).',
    example: {
      event: 'OrderCancelled',
      order_id: ORDER,
      reason: 'changed my mind',
      ...meta('0c5a9a55-96a4-4a0b-a0a3-4dd1f1b0c2c1', '2026-11-27T09:31:00.000Z'),
    },
  },
  OrderFulfilled: {
    schema: OrderFulfilled,
    summary: 'The order shipped: what is held for it becomes sold.',
    example: { event: 'OrderFulfilled', order_id: ORDER, ...meta('9b6f7c1e-0d7b-4a47-8f43-2f8b6a0f1d55', '2026-11-28T14:00:00.000Z') },
  },
  StockReserved: {
    schema: StockReserved,
    summary:
      "Every line is held for the order, each with the product's price when it was reserved, the locations its units are held at, and the units backordered (promised, not on hand yet).",
    example: {
      event: 'StockReserved',
      order_id: ORDER,
      items: [
        {
          product_id: 1,
          quantity: 2,
          unit_price_cents: 19900,
          allocations: [{ location_code: 'MAIN', quantity: 2 }],
          backordered_quantity: 0,
        },
      ],
      ...meta('8e8f6c5d-2f0e-4c55-b0f5-3f8a8f2c7d10', '2026-11-27T09:30:00.012Z'),
    },
  },
  StockRejected: {
    schema: StockRejected,
    summary: 'Nothing is held for the order; `reason` and `lines` say why.',
    example: {
      event: 'StockRejected',
      order_id: 'ORD-77',
      reason: 'Insufficient stock: product 1 (requested 3, available 1); Unknown product: 42',
      lines: [
        { product_id: 1, requested: 3, available: 1, problem: 'INSUFFICIENT_STOCK' },
        { product_id: 42, requested: 1, available: null, problem: 'UNKNOWN_PRODUCT' },
      ],
      ...meta('c7b8b1a4-0f0a-4a53-8d7e-2b52a9b1f0a2', '2026-11-27T09:30:00.015Z'),
    },
  },
  StockReleased: {
    schema: StockReleased,
    summary: 'What was released for a cancelled order: every line ever released for it, empty when nothing was held.',
    example: {
      event: 'StockReleased',
      order_id: ORDER,
      items: LINES,
      ...meta('61c0ad23-5c1d-4a53-9bde-7a8e8b1f2e44', '2026-11-27T09:31:00.020Z'),
    },
  },
  BackorderFilled: {
    schema: BackorderFilled,
    summary:
      'Stock arrived for an order waiting on backordered units (oldest order first, from the location that received it): each item is held for it now. Apply each `event_id` once.',
    example: {
      event: 'BackorderFilled',
      event_id: '3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f',
      occurred_at: '2026-11-29T08:00:00.000Z',
      order_id: ORDER,
      items: [{ product_id: 1, quantity: 2, location_code: 'MAIN' }],
    },
  },
  OrderPaid: {
    schema: OrderPaid,
    summary: 'The order is paid in full; its units stay held until it is fulfilled.',
    example: {
      event: 'OrderPaid',
      order_id: ORDER,
      payment_id: 'pay_8f2a',
      amount_cents: 39800,
      currency: 'EUR',
      ...meta('5d7e1c2a-8b3f-4f60-9a1e-2c3d4e5f6a7b', '2026-11-27T09:34:10.040Z'),
    },
  },
  RefundRequested: {
    schema: RefundRequested,
    summary:
      'The Order Service holds money it cannot keep: give `amount_cents` of `payment_id` back. Delivered at least once (a repeat carries the same `event_id`): give back each `payment_id` at most once.',
    example: {
      event: 'RefundRequested',
      payment_id: 'pay_9c01',
      order_id: ORDER,
      amount_cents: 39800,
      currency: 'EUR',
      reason: 'the order is already paid',
      ...meta('7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d', '2026-11-27T09:35:00.000Z'),
    },
  },
  PaymentSucceeded: {
    schema: PaymentSucceeded,
    summary: 'A payment service took the money for an order.',
    example: {
      event: 'PaymentSucceeded',
      payment_id: 'pay_8f2a',
      order_id: ORDER,
      amount_cents: 39800,
      currency: 'EUR',
      occurred_at: '2026-11-27T09:34:10.000Z',
    },
  },
  PaymentFailed: {
    schema: PaymentFailed,
    summary: 'A payment attempt failed; the order may still be paid until its hold is over.',
    example: {
      event: 'PaymentFailed',
      payment_id: 'pay_8f29',
      order_id: ORDER,
      reason: 'card declined',
      occurred_at: '2026-11-27T09:33:55.000Z',
    },
  },
};

/** Each routed event's schema, by name: what the document's payload of that event says. */
export const EVENT_SCHEMAS = Object.fromEntries(Object.entries(EVENTS).map(([name, spec]) => [name, spec.schema])) as {
  [Name in EventName]: EventSpec<Name>['schema'];
};

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
