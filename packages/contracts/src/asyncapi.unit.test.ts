import { describe, expect, it } from 'vitest';
import { asyncApiDocument } from './asyncapi.ts';
import { EXCHANGES, QUEUE_TYPES, ROUTING_KEYS, exchanges, queueDeclarations, queues, type QueueDeclaration } from './topology.ts';

const doc = asyncApiDocument();

type Json = Record<string, unknown>;
interface AmqpChannel {
  is: 'queue' | 'routingKey';
  exchange?: { name: string; type: string; durable: boolean };
  queue?: { name: string; durable: boolean };
  'x-queue-arguments'?: Record<string, unknown>;
  'x-bindings'?: { exchange: string; routingKey: string }[];
}
interface Channel {
  address: string;
  messages: Record<string, { $ref: string }>;
  bindings: { amqp: AmqpChannel };
}
interface Operation {
  action: 'send' | 'receive';
  channel: { $ref: string };
  messages: { $ref: string }[];
  tags: { name: string }[];
  bindings: { amqp: Json };
}

/** Follows a local $ref (`#/a/b`). */
const resolve = <T>(ref: { $ref: string }): T =>
  ref.$ref
    .slice(2)
    .split('/')
    .reduce<unknown>((node, key) => (node as Json)[key], doc) as T;

const channels = Object.values(doc.channels) as Channel[];
const operations = Object.values(doc.operations) as Operation[];
const messageNames = (refs: { $ref: string }[]) => refs.map((r) => resolve<{ name: string }>(resolve<{ $ref: string }>(r)).name).sort();
const queueChannel = (name: string) => channels.find((c) => c.bindings.amqp.is === 'queue' && c.bindings.amqp.queue?.name === name);

describe('the AsyncAPI document', () => {
  it('has a queue channel for every queue the services declare, with their arguments for each queue type and their bindings', () => {
    const declared = (pick: (type: (typeof QUEUE_TYPES)[number]) => QueueDeclaration) =>
      Object.fromEntries(QUEUE_TYPES.map((type) => [type, pick(type).arguments]));
    for (const spec of Object.values(queues)) {
      const expected = [
        { name: spec.queue, args: declared((t) => queueDeclarations(spec, t).main), bindings: spec.bindings },
        ...spec.retryQueues.map((r, i) => ({
          name: r.queue,
          args: declared((t) => queueDeclarations(spec, t).retries[i] as QueueDeclaration),
          bindings: [],
        })),
        {
          name: spec.deadLetterQueue,
          args: declared((t) => queueDeclarations(spec, t).deadLetter),
          bindings: [{ exchange: EXCHANGES.deadLetter, routingKey: spec.queue }],
        },
      ];
      for (const q of expected) {
        const channel = queueChannel(q.name);
        expect(channel?.address, q.name).toBe(q.name);
        expect(channel?.bindings.amqp.queue, q.name).toMatchObject({ name: q.name, durable: true });
        expect(channel?.bindings.amqp['x-queue-arguments'], q.name).toEqual(q.args);
        expect(channel?.bindings.amqp['x-bindings'], q.name).toEqual(q.bindings);
      }
    }
    expect(channels.filter((c) => c.bindings.amqp.is === 'queue')).toHaveLength(Object.keys(queues).length * 5);
  });

  it('publishes every routing key on its exchange, as declared, with the schema of its event', () => {
    const published = channels.filter(
      (c) => c.bindings.amqp.is === 'routingKey' && c.bindings.amqp.exchange?.name !== EXCHANGES.deadLetter,
    );
    expect(published.map((c) => c.address).sort()).toEqual(Object.values(ROUTING_KEYS).sort());
    for (const c of published) {
      const spec = exchanges.find((e) => e.exchange === c.bindings.amqp.exchange?.name);
      expect(c.bindings.amqp.exchange, c.address).toMatchObject({ type: spec?.type, durable: true });
      const [message] = Object.values(c.messages).map((m) => resolve<{ name: string; payload: { $ref: string } }>(m));
      const payload = resolve<{ properties: { event: { const: string } }; required: string[]; additionalProperties?: unknown }>(
        message!.payload,
      );
      expect(payload.properties.event.const).toBe(message?.name);
      expect(payload.required).toContain('order_id');
      // Consumers ignore unknown extras: the schema must not refuse them.
      expect(payload.additionalProperties, c.address).toBeUndefined();
    }
    expect(new Set(channels.flatMap((c) => c.bindings.amqp.exchange?.name ?? []))).toEqual(new Set(exchanges.map((e) => e.exchange)));
  });

  it('gives each party its operations: who sends which event, who receives which queue', () => {
    const flows = operations
      .filter((o) => o.tags[0]?.name !== 'operators' && !(o.action === 'send' && resolve<Channel>(o.channel).bindings.amqp.is === 'queue'))
      .filter((o) => resolve<Channel>(o.channel).bindings.amqp.exchange?.name !== EXCHANGES.deadLetter)
      .map((o) => `${o.tags[0]?.name} ${o.action}s ${resolve<Channel>(o.channel).address}: ${messageNames(o.messages).join(', ')}`)
      .sort();
    expect(flows).toEqual(
      [
        'Order Service sends order.created: OrderCreated',
        'Order Service sends order.cancelled: OrderCancelled',
        'Order Service sends order.fulfilled: OrderFulfilled',
        'Order Service sends order.confirmed: OrderConfirmed',
        'Order Service sends order.paid: OrderPaid',
        'Order Service sends order.refund_requested: RefundRequested',
        'Order Service receives stock.orders: BackorderFilled, StockRejected, StockReleased, StockReserved',
        'Order Service receives payment.orders: PaymentFailed, PaymentSucceeded',
        'Inventory Service receives order.created.inventory: OrderCreated',
        'Inventory Service receives order.cancelled.inventory: OrderCancelled',
        'Inventory Service receives order.fulfilled.inventory: OrderFulfilled',
        'Inventory Service sends stock.reserved: StockReserved',
        'Inventory Service sends stock.rejected: StockRejected',
        'Inventory Service sends stock.released: StockReleased',
        'Inventory Service sends stock.backorder_filled: BackorderFilled',
        'payment service sends payment.succeeded: PaymentSucceeded',
        'payment service sends payment.failed: PaymentFailed',
        'payment service receives order.refund_requested.payments: RefundRequested',
      ].sort(),
    );
  });

  it("lets Stockflow's consumers retry and park, and operators read each dead-letter queue", () => {
    const summary = (party: string, action: string, exchangeOrQueue: (c: AmqpChannel) => string | undefined) =>
      operations
        .filter((o) => o.tags[0]?.name === party && o.action === action)
        .map((o) => exchangeOrQueue(resolve<Channel>(o.channel).bindings.amqp))
        .filter((name) => name !== undefined);
    const retries = (q: (typeof queues)[keyof typeof queues]) => q.retryQueues.map((r) => r.queue);
    expect(summary('Inventory Service', 'send', (c) => c.queue?.name).sort()).toEqual(
      [queues.orderCreatedInventory, queues.orderCancelledInventory, queues.orderFulfilledInventory].flatMap(retries).sort(),
    );
    expect(summary('Order Service', 'send', (c) => c.queue?.name).sort()).toEqual(
      [queues.stockOrders, queues.paymentOrders].flatMap(retries).sort(),
    );
    expect(summary('Order Service', 'send', (c) => (c.exchange?.name === EXCHANGES.deadLetter ? 'parks' : undefined))).toEqual([
      'parks',
      'parks',
    ]);
    expect(
      summary('payment service', 'send', (c) => c.queue?.name ?? (c.exchange?.name === EXCHANGES.deadLetter ? 'parks' : undefined)),
    ).toEqual([]);
    expect(summary('operators', 'receive', (c) => c.queue?.name).sort()).toEqual(
      Object.values(queues)
        .map((q) => q.deadLetterQueue)
        .sort(),
    );
  });

  it('publishes mandatory exactly what a queue of the platform is bound for (not OrderConfirmed nor OrderPaid)', () => {
    const mandatory = operations
      .filter(
        (o) =>
          o.tags[0]?.name === 'Order Service' &&
          o.action === 'send' &&
          resolve<Channel>(o.channel).bindings.amqp.exchange?.name === EXCHANGES.orders,
      )
      .map((o) => [resolve<Channel>(o.channel).address, o.bindings.amqp.mandatory]);
    expect(Object.fromEntries(mandatory)).toEqual({
      [ROUTING_KEYS.orderCreated]: true,
      [ROUTING_KEYS.orderCancelled]: true,
      [ROUTING_KEYS.orderFulfilled]: true,
      [ROUTING_KEYS.refundRequested]: true,
      [ROUTING_KEYS.orderConfirmed]: false,
      [ROUTING_KEYS.orderPaid]: false,
    });
  });
});
