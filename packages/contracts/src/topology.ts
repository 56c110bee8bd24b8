/**
 * The RabbitMQ topology, declared once. Producers, consumers, tests and tools all take names,
 * routing keys and queue arguments from here so that a redeclaration never disagrees with an
 * earlier one (RabbitMQ refuses a queue declared again with other arguments).
 */

export const EXCHANGES = {
  orders: 'orders',
  inventory: 'inventory',
  /** Where payment services publish what happened to a payment. */
  payments: 'payments',
  /** Where parked messages go; direct, keyed by the name of the queue they came from. */
  deadLetter: 'stockflow.dlx',
} as const;

export const ROUTING_KEYS = {
  orderCreated: 'order.created',
  orderConfirmed: 'order.confirmed',
  orderCancelled: 'order.cancelled',
  orderFulfilled: 'order.fulfilled',
  stockReserved: 'stock.reserved',
  stockRejected: 'stock.rejected',
  stockReleased: 'stock.released',
  backorderFilled: 'stock.backorder_filled',
  orderPaid: 'order.paid',
  refundRequested: 'order.refund_requested',
  paymentSucceeded: 'payment.succeeded',
  paymentFailed: 'payment.failed',
} as const;

/** Who publishes events and consumes queues: Stockflow's two services, and another team's payment service. */
export type EventParty = 'orderService' | 'inventoryService' | 'paymentService';
export type EventPublisher = EventParty;

export interface EventRoute {
  exchange: string;
  routingKey: string;
  publisher: EventPublisher;
}

/**
 * Where each event is published, and by whom, stated once: the producers take their exchange and
 * routing key from it (routeOf), and the AsyncAPI document its channels and who sends on them, so
 * the document cannot name a route the code does not publish on.
 */
export const EVENT_ROUTES = {
  OrderCreated: { exchange: EXCHANGES.orders, routingKey: ROUTING_KEYS.orderCreated, publisher: 'orderService' },
  OrderConfirmed: { exchange: EXCHANGES.orders, routingKey: ROUTING_KEYS.orderConfirmed, publisher: 'orderService' },
  OrderCancelled: { exchange: EXCHANGES.orders, routingKey: ROUTING_KEYS.orderCancelled, publisher: 'orderService' },
  OrderFulfilled: { exchange: EXCHANGES.orders, routingKey: ROUTING_KEYS.orderFulfilled, publisher: 'orderService' },
  StockReserved: { exchange: EXCHANGES.inventory, routingKey: ROUTING_KEYS.stockReserved, publisher: 'inventoryService' },
  StockRejected: { exchange: EXCHANGES.inventory, routingKey: ROUTING_KEYS.stockRejected, publisher: 'inventoryService' },
  StockReleased: { exchange: EXCHANGES.inventory, routingKey: ROUTING_KEYS.stockReleased, publisher: 'inventoryService' },
  BackorderFilled: { exchange: EXCHANGES.inventory, routingKey: ROUTING_KEYS.backorderFilled, publisher: 'inventoryService' },
  OrderPaid: { exchange: EXCHANGES.orders, routingKey: ROUTING_KEYS.orderPaid, publisher: 'orderService' },
  RefundRequested: { exchange: EXCHANGES.orders, routingKey: ROUTING_KEYS.refundRequested, publisher: 'orderService' },
  PaymentSucceeded: { exchange: EXCHANGES.payments, routingKey: ROUTING_KEYS.paymentSucceeded, publisher: 'paymentService' },
  PaymentFailed: { exchange: EXCHANGES.payments, routingKey: ROUTING_KEYS.paymentFailed, publisher: 'paymentService' },
} as const satisfies Record<string, EventRoute>;

/** Every event of the contract, by its `event` field. */
export type EventName = keyof typeof EVENT_ROUTES;

/** The exchange and routing key `event` is published with. */
export const routeOf = (event: EventName): { exchange: string; routingKey: string } => {
  const { exchange, routingKey } = EVENT_ROUTES[event];
  return { exchange, routingKey };
};

export const QUEUES = {
  orderCreatedInventory: 'order.created.inventory',
  orderCancelledInventory: 'order.cancelled.inventory',
  orderFulfilledInventory: 'order.fulfilled.inventory',
  stockOrders: 'stock.orders',
  paymentOrders: 'payment.orders',
  refundRequestsPayments: 'order.refund_requested.payments',
} as const;

export const dlqName = (queue: string): string => `${queue}.dlq`;

export interface ExchangeSpec {
  exchange: string;
  type: 'topic' | 'direct';
  durable: true;
}

export interface QueueSpec {
  queue: string;
  durable: true;
  arguments: Record<string, string | number>;
  bindings: { exchange: string; routingKey: string }[];
  /** The parking queue for messages this queue's consumer gives up on. */
  deadLetterQueue: string;
  /**
   * Where a message waits before its next attempt after its handler failed, one queue per delay
   * (a queue-wide TTL, so a long wait never holds up a short one). An expired message goes back
   * to `queue` through the default exchange.
   */
  retryQueues: RetryQueueSpec[];
}

export interface RetryQueueSpec {
  queue: string;
  delayMs: number;
  arguments: Record<string, string | number>;
}

/** Delays before the 1st, 2nd, 3rd... retry of a failed message; the last one repeats. */
export const RETRY_DELAYS_MS = [1_000, 5_000, 25_000] as const;

/** Header counting how many times handling a message has failed. */
export const ATTEMPTS_HEADER = 'x-stockflow-attempts';

export const exchanges: ExchangeSpec[] = [
  { exchange: EXCHANGES.orders, type: 'topic', durable: true },
  { exchange: EXCHANGES.inventory, type: 'topic', durable: true },
  { exchange: EXCHANGES.payments, type: 'topic', durable: true },
  { exchange: EXCHANGES.deadLetter, type: 'direct', durable: true },
];

function consumerQueue(queue: string, bindings: QueueSpec['bindings']): QueueSpec {
  return {
    queue,
    durable: true,
    // A plain nack(requeue=false) still lands in the DLQ rather than vanishing.
    arguments: {
      'x-dead-letter-exchange': EXCHANGES.deadLetter,
      'x-dead-letter-routing-key': queue,
    },
    bindings,
    deadLetterQueue: dlqName(queue),
    retryQueues: RETRY_DELAYS_MS.map((delayMs) => ({
      queue: `${queue}.retry.${delayMs / 1_000}s`,
      delayMs,
      arguments: { 'x-message-ttl': delayMs, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': queue },
    })),
  };
}

/** Where a queue's consumer parks a message, and how its DLQ is bound: the dead-letter exchange, keyed by the queue's name. */
export const deadLetterRoute = (spec: QueueSpec): { exchange: string; routingKey: string } => ({
  exchange: spec.arguments['x-dead-letter-exchange'] as string,
  routingKey: spec.queue,
});

/**
 * How the queues are stored. `quorum` (the default in distributed mode): replicated by Raft over
 * the cluster's nodes, a publish confirmed once a majority holds it, so losing a node loses no
 * message. `classic`: one node's disk, for a single broker or a deployment not migrated yet.
 */
export const QUEUE_TYPES = ['quorum', 'classic'] as const;
export type QueueType = (typeof QUEUE_TYPES)[number];

/** One queue as it is declared on the broker (queue.declare's name, durability and arguments). */
export interface QueueDeclaration {
  queue: string;
  durable: true;
  arguments: Record<string, string | number>;
}

/**
 * A quorum queue that dead-letters (a consumer queue on reject, a retry queue on expiry) does it
 * at least once: the message leaves only once the target queue has confirmed it, so an expired
 * retry is never dropped on the way back to its queue, even with that queue's leader down. The
 * broker requires reject-publish overflow for it (no length limit is set, so it never rejects).
 */
const QUORUM_DEAD_LETTERING = { 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' } as const;

function declaredAs(type: QueueType, queue: string, args: Record<string, string | number>): QueueDeclaration {
  if (type === 'classic') return { queue, durable: true, arguments: args };
  const deadLetters = 'x-dead-letter-exchange' in args ? QUORUM_DEAD_LETTERING : {};
  return { queue, durable: true, arguments: { 'x-queue-type': 'quorum', ...args, ...deadLetters } };
}

/**
 * Every queue a consumer queue brings, as declared for `type`: the queue, its retry queues and its
 * dead-letter queue. Each is declared with exactly these arguments by every service, tool and
 * test; another declaration of the same name with other arguments is refused by the broker
 * (docs/events.md lists them for other teams).
 */
export function queueDeclarations(
  spec: QueueSpec,
  type: QueueType,
): { main: QueueDeclaration; retries: QueueDeclaration[]; deadLetter: QueueDeclaration } {
  return {
    main: declaredAs(type, spec.queue, spec.arguments),
    retries: spec.retryQueues.map((r) => declaredAs(type, r.queue, r.arguments)),
    deadLetter: declaredAs(type, spec.deadLetterQueue, {}),
  };
}

export const queues = {
  orderCreatedInventory: consumerQueue(QUEUES.orderCreatedInventory, [
    { exchange: EXCHANGES.orders, routingKey: ROUTING_KEYS.orderCreated },
  ]),
  orderCancelledInventory: consumerQueue(QUEUES.orderCancelledInventory, [
    { exchange: EXCHANGES.orders, routingKey: ROUTING_KEYS.orderCancelled },
  ]),
  orderFulfilledInventory: consumerQueue(QUEUES.orderFulfilledInventory, [
    { exchange: EXCHANGES.orders, routingKey: ROUTING_KEYS.orderFulfilled },
  ]),
  /** The Order Service's answers from inventory: reserved, rejected, released, and backorders filled. */
  stockOrders: consumerQueue(QUEUES.stockOrders, [{ exchange: EXCHANGES.inventory, routingKey: 'stock.*' }]),
  /** The Order Service's payments: succeeded, failed. */
  paymentOrders: consumerQueue(QUEUES.paymentOrders, [{ exchange: EXCHANGES.payments, routingKey: 'payment.*' }]),
  /**
   * The payment service's refund requests. Declared by Stockflow, which consumes nothing from it:
   * a refund is money owed, so it is published mandatory into a durable queue that holds it until
   * the payment service takes it, instead of being dropped while that service's own queue is missing.
   */
  refundRequestsPayments: consumerQueue(QUEUES.refundRequestsPayments, [
    { exchange: EXCHANGES.orders, routingKey: ROUTING_KEYS.refundRequested },
  ]),
} satisfies Record<string, QueueSpec>;

/**
 * Who consumes each queue, stated once (typed by `queues`, so a new queue cannot be left out): each service consumes, and
 * administers the dead letters of, the queues queuesConsumedBy gives it, and the AsyncAPI document names the same receiver.
 */
export const QUEUE_CONSUMERS = {
  orderCreatedInventory: 'inventoryService',
  orderCancelledInventory: 'inventoryService',
  orderFulfilledInventory: 'inventoryService',
  stockOrders: 'orderService',
  paymentOrders: 'orderService',
  refundRequestsPayments: 'paymentService',
} as const satisfies Record<keyof typeof queues, EventParty>;

/** The queues `party` consumes, in the order of `queues`. */
export const queuesConsumedBy = (party: EventParty): QueueSpec[] =>
  (Object.keys(queues) as (keyof typeof queues)[]).filter((key) => QUEUE_CONSUMERS[key] === party).map((key) => queues[key]);

/**
 * Does the platform's own topology give a message a queue? Sent to a queue by name (the default
 * exchange), parked (the dead-letter exchange), or matching a consumer queue's binding. Events
 * only other teams may subscribe to (OrderConfirmed, OrderPaid) have none here, and are not expected to.
 */
export function platformQueueFor(exchange: string, routingKey: string): boolean {
  if (exchange === '') return true;
  const specs = Object.values(queues);
  if (exchange === EXCHANGES.deadLetter) return specs.some((q) => q.queue === routingKey);
  return specs.some((q) => q.bindings.some((b) => b.exchange === exchange && topicMatches(b.routingKey, routingKey)));
}

/** Header carrying why a message was parked, set on everything we publish to a DLQ. */
export const DEAD_LETTER_REASON_HEADER = 'x-stockflow-reason';
/** Header keeping the routing key a parked or retried message first arrived with. */
export const ORIGINAL_ROUTING_KEY_HEADER = 'x-original-routing-key';
export const JSON_CONTENT_TYPE = 'application/json';

/** Does a topic exchange route `routingKey` to a binding with `pattern`? (`*` one word, `#` any) */
export function topicMatches(pattern: string, routingKey: string): boolean {
  const match = (p: string[], k: string[]): boolean => {
    if (p.length === 0) return k.length === 0;
    const [head, ...rest] = p;
    if (head === '#') return match(rest, k) || (k.length > 0 && match(p, k.slice(1)));
    if (k.length === 0) return false;
    return (head === '*' || head === k[0]) && match(rest, k.slice(1));
  };
  return match(pattern.split('.'), routingKey.split('.'));
}
