import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { queues, type IncomingMessage, type MessagingPeer } from '@stockflow/contracts';
import { createLogger, startTracing } from '@stockflow/observability';
import { IN_PROCESS_MESSAGING_SYSTEM } from '@stockflow/messaging';
import type { RunningService } from '@stockflow/runtime';
import {
  createTestDatabase,
  eventually,
  graphqlClient,
  missingParents,
  SPAN_KIND,
  startOtlpGrpcReceiver,
  startOtlpReceiver,
  type OtlpReceiver,
  type ReceivedSpan as Received,
  type TestDatabase,
} from '@stockflow/testing';
import { loadInventoryConfig, startInventoryService } from '@stockflow/inventory';
import { loadOrdersConfig } from '../src/config.ts';
import { startOrdersService } from '../src/service.ts';

const servicesUnavailable = inject('servicesUnavailable');
const logger = createLogger({ name: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });

const ROUTING_KEY = 'rabbitmq.destination.routing_key';
const broker = new URL(inject('amqpUrl'));

describe.skipIf(servicesUnavailable).each([
  // No OTEL_EXPORTER_OTLP_PROTOCOL: the specification's default, http/protobuf.
  { protocol: undefined, startReceiver: startOtlpReceiver, contentType: 'application/x-protobuf' },
  { protocol: 'grpc', startReceiver: startOtlpGrpcReceiver, contentType: 'application/grpc' },
])(
  'OpenTelemetry: one order is one trace across both services and the broker, OTLP protocol $protocol',
  ({ protocol, startReceiver, contentType }) => {
    const databases: TestDatabase[] = [];
    const running: RunningService[] = [];
    let receiver: OtlpReceiver;
    const saved = { ...process.env };

    beforeAll(async () => {
      receiver = await startReceiver();
      // The SDK reads the standard variables from the process's environment, as it would in a container.
      process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
      process.env.OTEL_BSP_SCHEDULE_DELAY = '50';
      delete process.env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL;
      if (protocol) process.env.OTEL_EXPORTER_OTLP_PROTOCOL = protocol;
      else delete process.env.OTEL_EXPORTER_OTLP_PROTOCOL;
      databases.push(await createTestDatabase('otel_inventory'), await createTestDatabase('otel_orders'));
      const env = (db: TestDatabase) => ({
        DATABASE_URL: db.url,
        AMQP_URL: inject('amqpUrl'),
        PORT: '0',
        HOST: '127.0.0.1',
        AUTH_DISABLED: 'true',
      });
      running.push(await startInventoryService(loadInventoryConfig(env(databases[0] as TestDatabase)), logger));
      running.push(
        await startOrdersService(loadOrdersConfig({ ...env(databases[1] as TestDatabase), PAYMENT_EXPIRY_INTERVAL_MS: '100' }), logger),
      );
    });
    afterAll(async () => {
      for (const s of running.reverse()) await s.close();
      process.env = saved;
      await receiver?.close();
      for (const db of databases) await db.drop();
    });

    const createProduct = async (sku: string) =>
      (
        await graphqlClient(`http://127.0.0.1:${(running[0] as RunningService).port}/graphql`).data<{ createProduct: { id: string } }>(
          `mutation { createProduct(input: {sku: "${sku}", name: "Traced", initialStock: 5}) { id } }`,
        )
      ).createProduct.id;
    const createOrder = async (productId: string, traceparent: string) => {
      const res = await fetch(`http://127.0.0.1:${(running[1] as RunningService).port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent },
        body: JSON.stringify({
          query: 'mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }',
          variables: { input: { customerId: 'otel', items: [{ productId, quantity: 1 }] } },
        }),
      });
      return ((await res.json()) as { data: { createOrder: { id: string } } }).data.createOrder.id;
    };
    const statusOf = async (orderId: string) =>
      (
        await graphqlClient(`http://127.0.0.1:${(running[1] as RunningService).port}/graphql`).data<{ order: { status: string } }>(
          `{ order(id: "${orderId}") { status } }`,
        )
      ).order.status;

    it('continues the caller’s traceparent from createOrder through the outbox, Inventory’s decision and its answer to the status change', async () => {
      const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
      const callerSpan = '00f067aa0ba902b7';
      const orderId = await createOrder(await createProduct('OTEL-1'), `00-${traceId}-${callerSpan}-01`);

      const routed = (s: Received, key: string) => s.attributes[ROUTING_KEY] === key;
      const steps = {
        request: (s: Received) => s.kind === SPAN_KIND.server,
        published: (s: Received) => s.kind === SPAN_KIND.producer && routed(s, 'order.created'),
        decided: (s: Received) => s.kind === SPAN_KIND.consumer && s.service === 'inventory',
        answered: (s: Received) => s.kind === SPAN_KIND.producer && routed(s, 'stock.reserved'),
        applied: (s: Received) => s.kind === SPAN_KIND.consumer && s.service === 'orders',
        confirmed: (s: Received) => s.kind === SPAN_KIND.producer && routed(s, 'order.confirmed'),
      };
      // Every step's span has arrived, whatever trace it is in (this order is the test's only one).
      await eventually(
        () => Promise.resolve(receiver.spans),
        (spans) => Object.values(steps).every((step) => spans.some(step)),
      );
      const trace = receiver.spans.filter((s) => s.traceId === traceId);
      const one = (step: keyof typeof steps) => {
        const found = trace.filter(steps[step]);
        expect(found, `${step} in the trace: ${JSON.stringify(trace.map((s) => [s.service, s.name]))}`).toHaveLength(1);
        return found[0] as Received;
      };

      const request = one('request');
      expect(request).toMatchObject({ service: 'orders', name: 'mutation createOrder', parentSpanId: callerSpan });
      expect(request.attributes).toMatchObject({
        'http.request.method': 'POST',
        'http.response.status_code': 200,
        'http.route': '/graphql',
        'url.scheme': 'http',
        'url.path': '/graphql',
      });

      const published = one('published');
      expect(published).toMatchObject({ service: 'orders', name: 'publish orders', parentSpanId: request.spanId });
      const rabbitmq = {
        'messaging.system.name': 'rabbitmq',
        'server.address': broker.hostname,
        'server.port': Number(broker.port || 5672),
      };
      expect(published.attributes).toMatchObject({
        ...rabbitmq,
        'messaging.destination.name': 'orders',
        'messaging.operation.type': 'send',
      });
      expect(typeof published.attributes['messaging.message.id']).toBe('string');

      const decided = one('decided');
      expect(decided).toMatchObject({ name: `process ${queues.orderCreatedInventory.queue}`, parentSpanId: published.spanId });
      expect(decided.attributes).toMatchObject({
        ...rabbitmq,
        'messaging.operation.type': 'process',
        'messaging.destination.name': 'orders',
        [ROUTING_KEY]: 'order.created',
        'messaging.destination.subscription.name': queues.orderCreatedInventory.queue,
        'messaging.message.id': published.attributes['messaging.message.id'],
      });
      expect(decided.attributes['rabbitmq.message.delivery_tag']).toBeGreaterThan(0);

      const answered = one('answered');
      expect(answered).toMatchObject({ service: 'inventory', name: 'publish inventory', parentSpanId: decided.spanId });

      const applied = one('applied');
      expect(applied).toMatchObject({ name: `process ${queues.stockOrders.queue}`, parentSpanId: answered.spanId });

      expect(one('confirmed')).toMatchObject({ service: 'orders', parentSpanId: applied.spanId });

      // Nothing of the order's journey hangs off a span the backend never received.
      const known = new Set([callerSpan, ...trace.map((s) => s.spanId)]);
      for (const span of trace) expect(known.has(span.parentSpanId ?? ''), `${span.service} ${span.name}`).toBe(true);

      expect(await statusOf(orderId)).toBe('CONFIRMED');
      // Sent over the protocol set (OTLP/HTTP's default encoding without one), and decoded from it above.
      expect(new Set(receiver.contentTypes)).toEqual(new Set([contentType]));
    });

    it('records nothing, in either service, of an order whose caller left its trace unsampled', async () => {
      const productSpans = () => receiver.spans.filter((s) => s.name === 'mutation createProduct').length;
      const before = productSpans();
      const productId = await createProduct('OTEL-2');
      // The exporters are live: the product's request (a trace of its own, sampled) arrives.
      await eventually(
        () => Promise.resolve(productSpans()),
        (n) => n === before + 1,
      );

      const traceId = '0af7651916cd43dd8448eb211c80319c';
      const orderId = await createOrder(productId, `00-${traceId}-b7ad6b7169203331-00`);
      await eventually(
        () => statusOf(orderId),
        (status) => status === 'CONFIRMED',
      );
      // The order's last spans ended by now; the batch processors export every 50 ms.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(receiver.spans.filter((s) => s.traceId === traceId)).toEqual([]);
    });

    it('starts a trace at the publish of an event no request caused (a payment hold that ran out), so no span has a parent never sent', async () => {
      const callerSpan = 'a3ce929d0e0e4736';
      const orderId = await createOrder(await createProduct('OTEL-3'), `00-5bf92f3577b34da6a3ce929d0e0e4736-${callerSpan}-01`);
      await eventually(
        () => statusOf(orderId),
        (status) => status === 'CONFIRMED',
      );
      // The hold runs out now: the Order Service's sweep (every 100 ms here) cancels the order.
      const db = new pg.Client({ connectionString: (databases[1] as TestDatabase).url });
      await db.connect();
      try {
        await db.query(`UPDATE orders SET payment_due_at = now() - interval '1 second' WHERE id = $1`, [orderId]);
      } finally {
        await db.end();
      }
      const routed = (s: Received, key: string) => s.attributes[ROUTING_KEY] === key;
      const cancelled = (s: Received) => s.kind === SPAN_KIND.producer && routed(s, 'order.cancelled');
      const released = (s: Received) => s.kind === SPAN_KIND.producer && routed(s, 'stock.released');
      await eventually(
        () => Promise.resolve(receiver.spans),
        (spans) => spans.some(cancelled) && spans.some(released),
      );
      expect(await statusOf(orderId)).toBe('CANCELLED');

      const publish = receiver.spans.find(cancelled) as Received;
      expect(publish).toMatchObject({ service: 'orders', name: 'publish orders', parentSpanId: undefined });
      const trace = receiver.spans.filter((s) => s.traceId === publish.traceId);
      const process = trace.find((s) => s.kind === SPAN_KIND.consumer && s.service === 'inventory');
      expect(process?.parentSpanId).toBe(publish.spanId);
      expect(trace.find(released)?.parentSpanId).toBe(process?.spanId);
      // Across every trace this file exported, each parent is a span received or the caller's own.
      expect(missingParents(receiver.spans, ['00f067aa0ba902b7', callerSpan])).toEqual([]);
    });
  },
);

describe('OpenTelemetry: the OTLP protocol of the standard variables', () => {
  let receiver: OtlpReceiver;
  const saved = { ...process.env };
  beforeAll(async () => {
    receiver = await startOtlpReceiver();
  });
  afterEach(() => {
    process.env = { ...saved };
  });
  afterAll(() => receiver.close());

  it.each([
    [{}, 'application/x-protobuf'],
    [{ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' }, 'application/x-protobuf'],
    [{ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }, 'application/json'],
    [{ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' }, 'application/json'],
    [{ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' }, 'application/x-protobuf'],
  ])('with %j exports as %s', async (variables, contentType) => {
    process.env = { ...saved, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, ...variables };
    delete process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
    const before = receiver.contentTypes.length;
    const tracing = await startTracing('probe', logger);
    tracing?.calling(undefined, { method: 'POST', url: 'http://127.0.0.1:8000/graphql', peer: 'inventory' }).answered(200);
    // The last spans are exported at shutdown.
    await tracing?.shutdown();
    expect(receiver.contentTypes.slice(before)).toEqual([contentType]);
    const span = receiver.spans.at(-1);
    expect(span).toMatchObject({ service: 'probe', name: 'POST inventory', kind: SPAN_KIND.client, parentSpanId: undefined });
    expect(span?.attributes).toMatchObject({ 'http.response.status_code': 200, 'server.port': 8000, 'server.service.name': 'inventory' });
  });

  const delivery = (deliveryTag: number | undefined): IncomingMessage => ({
    body: {},
    exchange: 'orders',
    routingKey: 'order.created',
    messageId: `m${deliveryTag}`,
    headers: {},
    redelivered: false,
    deliveryTag,
  });
  const batchOfTwo = async (via: MessagingPeer) => {
    process.env = { ...saved, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url };
    const before = receiver.spans.length;
    const tracing = await startTracing('probe', logger);
    tracing?.processing('order.created.inventory', [delivery(7), delivery(8)], via).applied();
    await tracing?.shutdown();
    return receiver.spans.slice(before);
  };

  it("gives each delivery of a batch a span of its own, with RabbitMQ's attributes and no batch count", async () => {
    const spans = await batchOfTwo({ system: 'rabbitmq', address: 'rabbit-1', port: 5672 });
    expect(spans.map((s) => s.attributes)).toEqual([
      expect.objectContaining({
        'messaging.system.name': 'rabbitmq',
        'server.address': 'rabbit-1',
        'server.port': 5672,
        [ROUTING_KEY]: 'order.created',
        'rabbitmq.message.delivery_tag': 7,
      }),
      expect.objectContaining({ 'messaging.system.name': 'rabbitmq', 'rabbitmq.message.delivery_tag': 8 }),
    ]);
    // A span of one message is no batch's (the conventions: not on single-message spans).
    for (const span of spans) expect(span.attributes).not.toHaveProperty('messaging.batch.message_count');
  });

  it('does not name RabbitMQ on the spans of the in-process transport', async () => {
    const spans = await batchOfTwo({ system: IN_PROCESS_MESSAGING_SYSTEM });
    expect(spans).toHaveLength(2);
    for (const span of spans) {
      expect(span.attributes['messaging.system.name']).toBe('stockflow.in_process');
      expect(Object.keys(span.attributes).filter((k) => k.startsWith('rabbitmq.') || k.startsWith('server.'))).toEqual([]);
    }
  });
});
