import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { queues } from '@stockflow/contracts';
import { createLogger, type RunningService } from '@stockflow/platform';
import { createTestDatabase, eventually, graphqlClient, type TestDatabase } from '@stockflow/testing';
import { loadInventoryConfig } from '../../inventory/src/config.ts';
import { startInventoryService } from '../../inventory/src/service.ts';
import { loadOrdersConfig } from '../src/config.ts';
import { startOrdersService } from '../src/service.ts';

const servicesUnavailable = inject('servicesUnavailable');
const logger = createLogger({ name: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });

type OtlpValue = { stringValue?: string; intValue?: string | number };
type OtlpAttribute = { key: string; value: OtlpValue };
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: OtlpAttribute[];
}
interface OtlpExport {
  resourceSpans: { resource: { attributes: OtlpAttribute[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
}
/** A span as received, with its service and attributes made plain. */
interface Received {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  kind: number;
  attributes: Record<string, string | number | undefined>;
}

const SPAN_KIND = { server: 2, producer: 4, consumer: 5 };

const plain = (attributes: OtlpAttribute[] = []) =>
  Object.fromEntries(
    attributes.map((a) => [a.key, a.value.stringValue ?? (a.value.intValue === undefined ? undefined : Number(a.value.intValue))]),
  );

/** An OTLP/HTTP receiver (JSON, as the exporter sends it), on loopback: what a collector would get. */
async function startOtlpReceiver(): Promise<{ server: Server; url: string; spans: Received[] }> {
  const spans: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/traces') {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as OtlpExport;
        for (const { resource, scopeSpans } of body.resourceSpans) {
          const service = String(plain(resource.attributes)['service.name']);
          for (const { spans: list } of scopeSpans)
            for (const s of list)
              spans.push({
                service,
                traceId: s.traceId,
                spanId: s.spanId,
                parentSpanId: s.parentSpanId || undefined,
                name: s.name,
                kind: s.kind,
                attributes: plain(s.attributes),
              });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans };
}

describe.skipIf(servicesUnavailable)('OpenTelemetry: one order is one trace across both services and the broker', () => {
  const databases: TestDatabase[] = [];
  const running: RunningService[] = [];
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
  const saved = { ...process.env };

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    // The SDK reads the standard variables from the process's environment, as it would in a container.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    process.env.OTEL_BSP_SCHEDULE_DELAY = '50';
    databases.push(await createTestDatabase('otel_inventory'), await createTestDatabase('otel_orders'));
    const env = (db: TestDatabase) => ({
      DATABASE_URL: db.url,
      AMQP_URL: inject('amqpUrl'),
      PORT: '0',
      HOST: '127.0.0.1',
      AUTH_DISABLED: 'true',
    });
    running.push(await startInventoryService(loadInventoryConfig(env(databases[0] as TestDatabase)), logger));
    running.push(await startOrdersService(loadOrdersConfig(env(databases[1] as TestDatabase)), logger));
  });
  afterAll(async () => {
    for (const s of running.reverse()) await s.close();
    process.env = saved;
    receiver?.server.close();
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

    const routed = (s: Received, key: string) => s.attributes['messaging.rabbitmq.destination.routing_key'] === key;
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
    expect(request.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.response.status_code': 200 });

    const published = one('published');
    expect(published).toMatchObject({ service: 'orders', name: 'publish orders', parentSpanId: request.spanId });
    expect(published.attributes).toMatchObject({
      'messaging.system': 'rabbitmq',
      'messaging.destination.name': 'orders',
      'messaging.operation.type': 'send',
    });
    expect(typeof published.attributes['messaging.message.id']).toBe('string');

    const decided = one('decided');
    expect(decided).toMatchObject({ name: `process ${queues.orderCreatedInventory.queue}`, parentSpanId: published.spanId });
    expect(decided.attributes).toMatchObject({
      'messaging.system': 'rabbitmq',
      'messaging.operation.type': 'process',
      'messaging.destination.name': 'orders',
      'messaging.rabbitmq.destination.routing_key': 'order.created',
      'messaging.destination.subscription.name': queues.orderCreatedInventory.queue,
      'messaging.message.id': published.attributes['messaging.message.id'],
    });

    const answered = one('answered');
    expect(answered).toMatchObject({ service: 'inventory', name: 'publish inventory', parentSpanId: decided.spanId });

    const applied = one('applied');
    expect(applied).toMatchObject({ name: `process ${queues.stockOrders.queue}`, parentSpanId: answered.spanId });

    expect(one('confirmed')).toMatchObject({ service: 'orders', parentSpanId: applied.spanId });

    // Nothing of the order's journey hangs off a span the backend never received.
    const known = new Set([callerSpan, ...trace.map((s) => s.spanId)]);
    for (const span of trace) expect(known.has(span.parentSpanId ?? ''), `${span.service} ${span.name}`).toBe(true);

    expect(await statusOf(orderId)).toBe('CONFIRMED');
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
});
