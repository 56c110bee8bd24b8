import { createServer, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger, metricSum } from '@stockflow/observability';
import type { RunningService } from '@stockflow/runtime';
import {
  createTestDatabase,
  eventually,
  freePort,
  graphqlClient,
  missingParents,
  serviceTestEnv,
  SPAN_KIND,
  SPAN_STATUS,
  startOtlpReceiver,
  type OtlpReceiver,
  type ReceivedSpan,
  type TestDatabase,
} from '@stockflow/testing';
import { loadInventoryConfig, startInventoryService } from '@stockflow/inventory';
import { loadOrdersConfig, startOrdersService } from '@stockflow/orders';
import { loadGatewayConfig, startGateway, type RunningGateway } from '../src/gateway.ts';

const servicesUnavailable = inject('servicesUnavailable');
const logger = createLogger({ name: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });

const ORDER_WITH_PRODUCTS = 'query OrderWithProducts($id: ID!) { order(id: $id) { id status items { quantity product { name } } } }';

describe.skipIf(servicesUnavailable)('the gateway, traced and measured', () => {
  const databases: TestDatabase[] = [];
  const running: RunningService[] = [];
  let gateway: RunningGateway;
  let gatewayUrl: string;
  let receiver: OtlpReceiver;
  const saved = { ...process.env };

  const base = (db: TestDatabase) => serviceTestEnv(db, inject('amqpUrl'), { AUTH_DISABLED: 'true', PAYMENT_HOLD_SECONDS: '0' });
  const gatewayConfig = (orders: string, inventory: string) =>
    loadGatewayConfig({ PORT: '0', HOST: '127.0.0.1', ORDERS_URL: orders, INVENTORY_URL: inventory, AUTH_DISABLED: 'true' });

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    // The gateway and both services read the standard variables, as each would in its container.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    process.env.OTEL_BSP_SCHEDULE_DELAY = '50';
    databases.push(await createTestDatabase('gwobs_inventory'), await createTestDatabase('gwobs_orders'));
    running.push(await startInventoryService(loadInventoryConfig(base(databases[0] as TestDatabase)), logger));
    running.push(await startOrdersService(loadOrdersConfig(base(databases[1] as TestDatabase)), logger));
    const [inventory, orders] = running as [RunningService, RunningService];
    gateway = await startGateway(
      gatewayConfig(`http://127.0.0.1:${orders.port}/graphql`, `http://127.0.0.1:${inventory.port}/graphql`),
      logger,
    );
    gatewayUrl = `http://127.0.0.1:${gateway.port}/graphql`;
  });
  afterAll(async () => {
    await gateway?.close();
    for (const s of running.reverse()) await s.close();
    process.env = saved;
    await receiver?.close();
    for (const db of databases) await db.drop();
  });

  const post = (body: unknown, traceparent: string) =>
    fetch(gatewayUrl, { method: 'POST', headers: { 'content-type': 'application/json', traceparent }, body: JSON.stringify(body) });

  it("is one trace from the gateway's span through its subgraph requests to both services' spans and the order's events", async () => {
    const { createProduct } = await graphqlClient(gatewayUrl).data<{ createProduct: { id: string } }>(
      'mutation { createProduct(input: {sku: "GWOBS-1", name: "Traced mug", initialStock: 5}) { id } }',
    );
    const created = await post(
      {
        query: 'mutation Place($input: CreateOrderInput!) { createOrder(input: $input) { id } }',
        variables: { input: { customerId: 'gwobs', items: [{ productId: createProduct.id, quantity: 1 }] } },
      },
      '00-6bf92f3577b34da6a3ce929d0e0e4736-10f067aa0ba902b7-01',
    );
    const orderId = ((await created.json()) as { data: { createOrder: { id: string } } }).data.createOrder.id;
    const read = await post(
      { query: ORDER_WITH_PRODUCTS, variables: { id: orderId } },
      '00-7bf92f3577b34da6a3ce929d0e0e4736-20f067aa0ba902b7-01',
    );
    expect(((await read.json()) as { data: { order: { items: unknown[] } } }).data.order.items).toEqual([
      { quantity: 1, product: { name: 'Traced mug' } },
    ]);

    const inTrace = (traceId: string) => receiver.spans.filter((s) => s.traceId === traceId);
    const one = (spans: ReceivedSpan[], match: (s: ReceivedSpan) => boolean, what: string) => {
      const found = spans.filter(match);
      expect(found, `${what}: ${JSON.stringify(spans.map((s) => [s.service, s.kind, s.name]))}`).toHaveLength(1);
      return found[0] as ReceivedSpan;
    };
    const server = (service: string) => (s: ReceivedSpan) => s.service === service && s.kind === SPAN_KIND.server;
    const client = (peer: string) => (s: ReceivedSpan) =>
      s.service === 'gateway' && s.kind === SPAN_KIND.client && s.name === `POST ${peer}`;

    // The read: the gateway's span, its requests to both services, and theirs.
    const readTrace = '7bf92f3577b34da6a3ce929d0e0e4736';
    await eventually(
      () => Promise.resolve(inTrace(readTrace)),
      (spans) =>
        [server('gateway'), server('orders'), server('inventory'), client('orders'), client('inventory')].every((m) => spans.some(m)),
    );
    // The gateway's request span ends once the answer is out, after the others: give it its export.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const readSpans = inTrace(readTrace);
    const root = one(readSpans, server('gateway'), 'the gateway request');
    expect(root).toMatchObject({ name: 'query OrderWithProducts', parentSpanId: '20f067aa0ba902b7' });
    expect(root.attributes).toMatchObject({
      'graphql.operation.type': 'query',
      'http.response.status_code': 200,
      'http.route': '/graphql',
      'url.path': '/graphql',
      'url.scheme': 'http',
    });
    for (const subgraph of ['orders', 'inventory']) {
      const call = one(readSpans, client(subgraph), `the request to ${subgraph}`);
      expect(call.parentSpanId).toBe(root.spanId);
      expect(call.attributes).toMatchObject({
        'http.request.method': 'POST',
        'http.response.status_code': 200,
        'server.service.name': subgraph,
      });
      // The service's span is the child of the gateway's request to it, not of the client's span.
      const served = readSpans.filter(server(subgraph));
      expect(served.length).toBeGreaterThan(0);
      for (const s of served) expect(s.parentSpanId).toBe(call.spanId);
    }

    // The order: the gateway's span down to the Order Service's publish and Inventory's decision.
    const orderTrace = '6bf92f3577b34da6a3ce929d0e0e4736';
    await eventually(
      () => Promise.resolve(inTrace(orderTrace)),
      (spans) => spans.some((s) => s.service === 'inventory' && s.kind === SPAN_KIND.consumer),
    );
    const orderSpans = inTrace(orderTrace);
    const placed = one(orderSpans, server('gateway'), 'the gateway request');
    expect(placed).toMatchObject({ name: 'mutation Place', parentSpanId: '10f067aa0ba902b7' });
    const call = one(orderSpans, client('orders'), 'the request to orders');
    expect(call.parentSpanId).toBe(placed.spanId);
    const created2 = one(orderSpans, server('orders'), 'the createOrder request');
    // The gateway sends the subgraph its share under the client's operation name.
    expect(created2).toMatchObject({ name: 'mutation Place', parentSpanId: call.spanId });
    const publish = one(
      orderSpans,
      (s) => s.kind === SPAN_KIND.producer && s.attributes['rabbitmq.destination.routing_key'] === 'order.created',
      'the publish of OrderCreated',
    );
    expect(publish.parentSpanId).toBe(created2.spanId);

    expect(missingParents([...readSpans, ...orderSpans], ['10f067aa0ba902b7', '20f067aa0ba902b7'])).toEqual([]);
  });

  it('serves /metrics: requests by operation type and outcome, subgraph requests by subgraph and outcome', async () => {
    const metrics = async () => (await fetch(`http://127.0.0.1:${gateway.port}/metrics`)).text();
    const before = await metrics();
    const requests = (text: string, labels: Record<string, string>) =>
      metricSum(text, 'stockflow_graphql_request_duration_seconds_count', { service: 'gateway', ...labels });
    const subgraph = (text: string, labels: Record<string, string>) =>
      metricSum(text, 'stockflow_gateway_subgraph_request_duration_seconds_count', { service: 'gateway', ...labels });

    // One query, a share of it to each service.
    await graphqlClient(gatewayUrl).data(
      '{ products(first: 1) { nodes { id } } order(id: "00000000-0000-4000-8000-000000000000") { id } }',
    );
    // An answer with errors (a field no subgraph has) and a refused form post.
    const invalid = await fetch(gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ nothingHere }' }),
    });
    expect(((await invalid.json()) as { errors?: unknown[] }).errors?.length).toBeGreaterThan(0);
    const form = await fetch(gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'query=%7B__typename%7D',
    });
    expect(form.status).toBe(415);

    const after = await metrics();
    expect(requests(after, { operation: 'query', outcome: 'ok' }) - requests(before, { operation: 'query', outcome: 'ok' })).toBe(1);
    expect(requests(after, { operation: 'other', outcome: 'error' }) - requests(before, { operation: 'other', outcome: 'error' })).toBe(2);
    expect(subgraph(after, { subgraph: 'inventory', outcome: 'ok' }) - subgraph(before, { subgraph: 'inventory', outcome: 'ok' })).toBe(1);
    expect(subgraph(after, { subgraph: 'orders', outcome: 'ok' }) - subgraph(before, { subgraph: 'orders', outcome: 'ok' })).toBe(1);
    // Node's own metrics, as the services have.
    expect(metricSum(after, 'process_cpu_seconds_total', { service: 'gateway' })).toBeGreaterThan(0);
  });

  it("has each service's failure series from its start, at zero: an alert's rate() sees the first failure", async () => {
    const fresh = await startGateway(
      gatewayConfig(`http://127.0.0.1:${await freePort()}/graphql`, `http://127.0.0.1:${await freePort()}/graphql`),
      logger,
    );
    try {
      const text = await (await fetch(`http://127.0.0.1:${fresh.port}/metrics`)).text();
      /** The values of `metric`'s samples that carry every one of `labels`. */
      const samples = (metric: string, labels: Record<string, string>) =>
        text
          .split('\n')
          .filter((line) => line.startsWith(`${metric}{`) && Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
          .map((line) => line.slice(line.lastIndexOf(' ') + 1));
      for (const subgraph of ['orders', 'inventory']) {
        for (const outcome of ['draining', 'unreachable', 'unknown'])
          expect(
            samples('stockflow_gateway_subgraph_request_duration_seconds_count', { subgraph, outcome }),
            `${subgraph} ${outcome}`,
          ).toEqual(['0']);
        expect(samples('stockflow_gateway_subgraph_streams_cut_total', { subgraph }), subgraph).toEqual(['0']);
      }
    } finally {
      await fresh.close();
    }
  });

  it('counts a subgraph that does not answer as unreachable, and the request as an error', async () => {
    const deadPort = await freePort();
    const orders = running[1] as RunningService;
    const half = await startGateway(
      gatewayConfig(`http://127.0.0.1:${orders.port}/graphql`, `http://127.0.0.1:${deadPort}/graphql`),
      logger,
    );
    try {
      const answer = await graphqlClient(`http://127.0.0.1:${half.port}/graphql`).request('{ products(first: 1) { nodes { id } } }');
      // Forwarded whole to the Inventory Service, which is not there.
      expect(answer.status).toBe(502);
      expect(answer.errors?.map((e) => e.extensions?.code)).toEqual(['SUBGRAPH_UNREACHABLE']);
      const text = await (await fetch(`http://127.0.0.1:${half.port}/metrics`)).text();
      expect(
        metricSum(text, 'stockflow_gateway_subgraph_request_duration_seconds_count', { subgraph: 'inventory', outcome: 'unreachable' }),
      ).toBe(1);
      expect(metricSum(text, 'stockflow_graphql_request_duration_seconds_count', { operation: 'query', outcome: 'error' })).toBe(1);
      // Its CLIENT span says so too.
      const failed = await eventually(
        () => Promise.resolve(receiver.spans.filter((s) => s.kind === SPAN_KIND.client && s.attributes['server.port'] === deadPort)),
        (spans) => spans.length === 1,
      );
      expect(failed[0]?.attributes['error.type']).toBeDefined();
      expect(failed[0]?.status).toBe(SPAN_STATUS.error);
    } finally {
      await half.close();
    }
  });

  it('counts a subgraph request given up because the client left as cancelled, and does not mark its span an error', async () => {
    // A stand-in Order Service that answers nothing until the test ends.
    const arrived: (() => void)[] = [];
    const held: ServerResponse[] = [];
    const slow = createServer((req, res) => {
      req.resume();
      held.push(res);
      arrived.shift()?.();
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    const slowPort = (slow.address() as { port: number }).port;
    const inventory = running[0] as RunningService;
    const stalled = await startGateway(
      gatewayConfig(`http://127.0.0.1:${slowPort}/graphql`, `http://127.0.0.1:${inventory.port}/graphql`),
      logger,
    );
    try {
      const client = new AbortController();
      const reached = new Promise<void>((resolve) => arrived.push(resolve));
      const asked = fetch(`http://127.0.0.1:${stalled.port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent: '00-9bf92f3577b34da6a3ce929d0e0e4736-40f067aa0ba902b7-01' },
        body: JSON.stringify({ query: '{ order(id: "00000000-0000-4000-8000-000000000000") { id } }' }),
        signal: client.signal,
      });
      await reached;
      client.abort();
      await expect(asked).rejects.toThrow();

      const count = (text: string, outcome: string) =>
        metricSum(text, 'stockflow_gateway_subgraph_request_duration_seconds_count', { subgraph: 'orders', outcome });
      const text = await eventually(
        async () => (await fetch(`http://127.0.0.1:${stalled.port}/metrics`)).text(),
        (t) => count(t, 'cancelled') === 1,
      );
      expect(count(text, 'unreachable')).toBe(0);
      expect(count(text, 'unknown')).toBe(0);
      const [call] = await eventually(
        () => Promise.resolve(receiver.spans.filter((s) => s.kind === SPAN_KIND.client && s.attributes['server.port'] === slowPort)),
        (spans) => spans.length === 1,
      );
      expect(call?.status).toBe(SPAN_STATUS.unset);
      expect(call?.attributes['error.type']).toBeUndefined();
      expect(call?.events).toEqual(['cancelled']);
    } finally {
      for (const res of held) res.destroy();
      slow.closeAllConnections();
      await new Promise((resolve) => slow.close(resolve));
      await stalled.close();
    }
  });

  it('gives a request to a path the gateway does not serve no route: its span is named by the method', async () => {
    const res = await fetch(`http://127.0.0.1:${gateway.port}/elsewhere?x=1`, {
      headers: { traceparent: '00-abf92f3577b34da6a3ce929d0e0e4736-50f067aa0ba902b7-01' },
    });
    expect(res.status).toBe(404);
    const [span] = await eventually(
      () => Promise.resolve(receiver.spans.filter((s) => s.traceId === 'abf92f3577b34da6a3ce929d0e0e4736' && s.kind === SPAN_KIND.server)),
      (spans) => spans.length === 1,
    );
    expect(span).toMatchObject({ service: 'gateway', name: 'GET' });
    expect(span?.attributes).toMatchObject({ 'url.path': '/elsewhere', 'url.scheme': 'http', 'http.response.status_code': 404 });
    expect(span?.attributes).not.toHaveProperty('http.route');
  });
});

describe('the gateway, untraced', () => {
  it("forwards the client's traceparent to the services as it came", async () => {
    const saved = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    // A stand-in Order Service that records what it is sent.
    const received: (string | undefined)[] = [];
    const upstream = createServer((req, res) => {
      received.push(req.headers.traceparent as string | undefined);
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":{"order":null}}'));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const port = (upstream.address() as { port: number }).port;
    const gateway = await startGateway(
      loadGatewayConfig({
        PORT: '0',
        HOST: '127.0.0.1',
        ORDERS_URL: `http://127.0.0.1:${port}/graphql`,
        INVENTORY_URL: `http://127.0.0.1:${port}/graphql`,
        AUTH_DISABLED: 'true',
      }),
      logger,
    );
    try {
      const traceparent = '00-8bf92f3577b34da6a3ce929d0e0e4736-30f067aa0ba902b7-01';
      const res = await fetch(`http://127.0.0.1:${gateway.port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent },
        body: JSON.stringify({ query: '{ order(id: "x") { id } }' }),
      });
      expect(await res.json()).toEqual({ data: { order: null } });
      expect(received).toEqual([traceparent]);
    } finally {
      await gateway.close();
      await new Promise((resolve) => upstream.close(resolve));
      if (saved !== undefined) process.env.OTEL_EXPORTER_OTLP_ENDPOINT = saved;
    }
  });
});
