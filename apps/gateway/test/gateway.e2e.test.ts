import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AUTH_NOTICE_HEADER } from '@stockflow/graphql';
import { DRAINING_HEADER } from '@stockflow/platform';
import { createLogger, metricSum } from '@stockflow/observability';
import { signToken } from '@stockflow/client';
import type { RunningService } from '@stockflow/runtime';
import { randomUUID } from 'node:crypto';
import { dlqName, EXCHANGES, queues, ROUTING_KEYS } from '@stockflow/contracts';
import {
  capturingLogger,
  createTestDatabase,
  eventually,
  freePort,
  graphqlClient,
  rawAmqp,
  serviceTestEnv,
  sseSubscribe,
  startTcpProxy,
  type TestDatabase,
} from '@stockflow/testing';
import { loadInventoryConfig, startInventoryService } from '@stockflow/inventory';
import { loadOrdersConfig, startOrdersService } from '@stockflow/orders';
import { loadGatewayConfig, startGateway, type RunningGateway } from '../src/gateway.ts';

const servicesUnavailable = inject('servicesUnavailable');
const logger = createLogger({ name: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const SECRET = 'a-test-secret-that-is-at-least-32-characters-long';

type Client = ReturnType<typeof graphqlClient>;
type Line = { quantity: number; product: { name: string; priceCents: number | null; availableStock: number } | null };

/** What a client is told, and the gateway logs, when the Inventory Service fails it (apps/gateway/src/failures.ts). */
const UNREACHABLE = {
  message: 'The inventory service could not be reached.',
  code: 'SUBGRAPH_UNREACHABLE',
  log: 'a service could not be reached',
  /** The subgraph request's outcome in the gateway's metrics. */
  outcome: 'unreachable',
};
const UNKNOWN = {
  message: 'The inventory service did not answer; whether the request took effect is not known.',
  code: 'SUBGRAPH_OUTCOME_UNKNOWN',
  log: 'a service did not answer',
  outcome: 'unknown',
};
/** A draining instance's refusal: the client is told as for an unreachable service; counted apart (routine in a rolling update). */
const DRAINING = { ...UNREACHABLE, outcome: 'draining' };

/** The gateway's requests to `subgraph` counted with each outcome (whatever it is) at least once, from its /metrics. */
const subgraphOutcomes = async (port: number, subgraph: string) => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const [, labels = '', n] of text.matchAll(/^stockflow_gateway_subgraph_request_duration_seconds_count\{([^}]*)\} (\S+)$/gm)) {
    const outcome = /outcome="([^"]*)"/.exec(labels)?.[1];
    if (labels.includes(`subgraph="${subgraph}"`) && outcome && Number(n) > 0) counts[outcome] = Number(n);
  }
  return counts;
};

const ORDER_WITH_PRODUCTS =
  'query($id: ID!) { order(id: $id) { id status items { quantity product { name priceCents availableStock } } } }';

describe.skipIf(servicesUnavailable)('the gateway: one graph over both services', () => {
  let ordersDb: TestDatabase;
  let inventoryDb: TestDatabase;
  let orders: RunningService;
  let inventory: RunningService;
  let gateway: RunningGateway;
  let gatewayUrl: string;
  const tokens: Record<'admin' | 'alice' | 'bob' | 'payments', string> = { admin: '', alice: '', bob: '', payments: '' };
  const via = (who: keyof typeof tokens | 'anonymous'): Client =>
    graphqlClient(gatewayUrl, { token: who === 'anonymous' ? undefined : tokens[who] });
  let productId: string;

  const base = (db: TestDatabase) =>
    serviceTestEnv(db, inject('amqpUrl'), { AUTH_JWT_SECRET: SECRET, PAYMENT_HOLD_SECONDS: '0', GRAPHQL_INTROSPECTION: 'false' });

  /** A gateway in front of this test's services (or others, where `settings` says). */
  const gatewayWith = (settings: Record<string, string> = {}, log = logger) =>
    startGateway(
      loadGatewayConfig({
        PORT: '0',
        HOST: '127.0.0.1',
        ORDERS_URL: `http://127.0.0.1:${orders.port}/graphql`,
        INVENTORY_URL: `http://127.0.0.1:${inventory.port}/graphql`,
        AUTH_JWT_SECRET: SECRET,
        ...settings,
      }),
      log,
    );

  beforeAll(async () => {
    ordersDb = await createTestDatabase('gateway_orders');
    inventoryDb = await createTestDatabase('gateway_inventory');
    inventory = await startInventoryService(loadInventoryConfig(base(inventoryDb)), logger);
    orders = await startOrdersService(loadOrdersConfig(base(ordersDb)), logger);
    gateway = await gatewayWith();
    gatewayUrl = `http://127.0.0.1:${gateway.port}/graphql`;
    tokens.admin = await signToken(SECRET, { sub: 'ops', role: 'admin' });
    tokens.alice = await signToken(SECRET, { sub: 'alice', role: 'customer' });
    tokens.bob = await signToken(SECRET, { sub: 'bob', role: 'customer' });
    tokens.payments = await signToken(SECRET, { sub: 'psp-webhook', role: 'payments' });
    productId = (
      await via('admin').data<{ createProduct: { id: string } }>(
        'mutation { createProduct(input: {sku: "GW-1", name: "Gateway mug", priceCents: 1250, initialStock: 10}) { id } }',
      )
    ).createProduct.id;
  });
  afterAll(async () => {
    await gateway?.close();
    await orders?.close();
    await inventory?.close();
    await ordersDb?.drop();
    await inventoryDb?.drop();
  });

  const createOrder = async (who: 'alice' | 'bob', quantity: number) =>
    (
      await via(who).data<{ createOrder: { id: string } }>('mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }', {
        input: { customerId: who, items: [{ productId, quantity }] },
      })
    ).createOrder.id;

  it("answers an order with its products' names, prices and stock, joined from both services", async () => {
    const id = await createOrder('alice', 3);
    const { order } = await eventually(
      () => via('alice').data<{ order: { status: string; items: Line[] } }>(ORDER_WITH_PRODUCTS, { id }),
      (r) => r.order.status === 'CONFIRMED',
    );
    expect(order.items).toEqual([{ quantity: 3, product: { name: 'Gateway mug', priceCents: 1250, availableStock: 7 } }]);
  });

  it('answers null, and no error, for the product of a line whose product the Inventory Service does not have', async () => {
    // The Inventory Service rejects the order, but its line still names product 999.
    const { createOrder: created } = await via('alice').data<{ createOrder: { id: string } }>(
      'mutation { createOrder(input: { customerId: "alice", items: [{ productId: "999", quantity: 1 }] }) { id } }',
    );
    const query = 'query($id: ID!) { order(id: $id) { status items { productId quantity product { name priceCents } } } }';
    const answer = await eventually(
      () => via('alice').request(query, { id: created.id }),
      (r) => (r.data as { order: { status: string } } | undefined)?.order.status === 'CANCELLED',
    );
    expect(answer.errors).toBeUndefined();
    expect(answer.data).toEqual({ order: { status: 'CANCELLED', items: [{ productId: '999', quantity: 1, product: null }] } });
  });

  it('logs an unexpected error in a joined answer with its cause and where it arose, and answers it as "Unexpected error."', async () => {
    // An Inventory Service answering what its schema says it never does: a product without a name.
    const broken = createServer((req, res) => {
      req.resume();
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ data: { _entities: [{ __typename: 'OrderLine', product: { name: null } }] } }));
    });
    await new Promise<void>((resolve) => broken.listen(0, '127.0.0.1', resolve));
    const lines: Record<string, unknown>[] = [];
    const watched = await gatewayWith(
      { INVENTORY_URL: `http://127.0.0.1:${(broken.address() as AddressInfo).port}/graphql` },
      capturingLogger('gateway', lines),
    );
    try {
      // A product the Inventory Service does not have: the order reserves nothing the other tests count on.
      const { createOrder: created } = await via('alice').data<{ createOrder: { id: string } }>(
        'mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }',
        { input: { customerId: 'alice', items: [{ productId: '424242', quantity: 1 }] } },
      );
      const client = graphqlClient(`http://127.0.0.1:${watched.port}/graphql`, { token: tokens.admin });
      const answer = await client.request('query($id: ID!) { order(id: $id) { items { product { name } } } }', { id: created.id });
      expect(answer.errors?.map((e) => [e.message, e.extensions?.code])).toEqual([['Unexpected error.', 'INTERNAL_SERVER_ERROR']]);
      expect(JSON.stringify(answer)).not.toMatch(/non-nullable/);
      const logged = lines.filter((l) => l.level === 50);
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatchObject({
        msg: 'unexpected error while resolving a GraphQL request',
        path: 'order.items.0.product.name',
        err: { message: 'Cannot return null for non-nullable field Product.name.' },
      });
      expect((logged[0]?.err as { stack?: string }).stack).toMatch(/^Error: Cannot return null[^]*\n +at /);
    } finally {
      await watched.close();
      await new Promise((resolve) => broken.close(resolve));
    }
  });

  describe('a join whose Inventory Service fails, without its address or the request the gateway made of it', () => {
    const LEAKS = /ECONNREFUSED|127\.0\.0\.1|_entities|representations|not json/;
    const joinThrough = async (inventoryUrl: string) => {
      const lines: Record<string, unknown>[] = [];
      const watched = await gatewayWith({ INVENTORY_URL: inventoryUrl }, capturingLogger('gateway', lines));
      try {
        // Two products the Inventory Service does not have: the order reserves nothing the other tests
        // count on, and its two lines ask the service for their products in one request.
        const { createOrder: created } = await via('alice').data<{ createOrder: { id: string } }>(
          'mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }',
          {
            input: {
              customerId: 'alice',
              items: [
                { productId: '424242', quantity: 1 },
                { productId: '424243', quantity: 1 },
              ],
            },
          },
        );
        const id = created.id;
        const client = graphqlClient(`http://127.0.0.1:${watched.port}/graphql`, { token: tokens.alice });
        const answer = await client.request('query($id: ID!) { order(id: $id) { id items { product { name } } } }', { id });
        const outcomes = await subgraphOutcomes(watched.port, 'inventory');
        return { id, answer, outcomes, logged: lines.filter((l) => (l.level as number) >= 40) };
      } finally {
        await watched.close();
      }
    };

    it('answers a service it cannot reach as SUBGRAPH_UNREACHABLE for the products, with the order, logs it once and counts it unreachable', async () => {
      const deadPort = await freePort();
      // By name, as the default settings name the services: Node tries each address localhost has.
      const { id, answer, outcomes, logged } = await joinThrough(`http://localhost:${deadPort}/graphql`);
      expect(answer.data).toEqual({ order: { id, items: [{ product: null }, { product: null }] } });
      expect(outcomes).toEqual({ unreachable: 1 });
      // One error per line, at the runtime's path for the field (it names no list index).
      const unreachable = {
        message: 'The inventory service could not be reached.',
        path: ['order', 'items', 'product'],
        extensions: { code: 'SUBGRAPH_UNREACHABLE', subgraph: 'inventory' },
      };
      expect(answer.errors).toEqual([unreachable, unreachable]);
      expect(JSON.stringify(answer)).not.toMatch(LEAKS);
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatchObject({
        level: 40,
        msg: 'a service could not be reached',
        subgraph: 'inventory',
        path: 'order.items.product',
      });
      expect(JSON.stringify(logged[0]?.err)).toMatch(/ECONNREFUSED/);
    });

    it('answers a service answering what is not JSON as "Unexpected error.", and logs it once with its cause', async () => {
      const broken = createServer((req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'application/json' }).end('not json from the inventory');
      });
      await new Promise<void>((resolve) => broken.listen(0, '127.0.0.1', resolve));
      try {
        const { id, answer, logged } = await joinThrough(`http://127.0.0.1:${(broken.address() as AddressInfo).port}/graphql`);
        expect(answer.data).toEqual({ order: { id, items: [{ product: null }, { product: null }] } });
        const unexpected = {
          message: 'Unexpected error.',
          path: ['order', 'items', 'product'],
          extensions: { code: 'INTERNAL_SERVER_ERROR' },
        };
        expect(answer.errors).toEqual([unexpected, unexpected]);
        expect(JSON.stringify(answer)).not.toMatch(LEAKS);
        expect(logged).toHaveLength(1);
        expect(logged[0]).toMatchObject({
          level: 50,
          msg: 'unexpected error while resolving a GraphQL request',
          path: 'order.items.product',
        });
        expect((logged[0]?.err as { stack?: string }).stack).toMatch(/not json[^]*\n +at /);
      } finally {
        await new Promise((resolve) => broken.close(resolve));
      }
    });

    it.each([
      [503, 'as a draining one does, as SUBGRAPH_UNREACHABLE', { [DRAINING_HEADER]: 'true' }, DRAINING],
      [504, 'as a load balancer does that timed out on it, as SUBGRAPH_OUTCOME_UNKNOWN', {}, UNKNOWN],
    ] as const)(
      'answers a service refusing the request with %i, %s, logs it once and counts it by what happened',
      async (status, _as, marked, expected) => {
        // What a service answers a request arriving on a kept-alive connection once it has begun to drain (createDrainingServer).
        const refusing = createServer((req, res) => {
          req.resume();
          res.writeHead(status, { 'content-type': 'application/json', connection: 'close', 'retry-after': '1', ...marked });
          res.end(JSON.stringify({ status: 'shutting down' }));
        });
        await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
        try {
          const { id, answer, outcomes, logged } = await joinThrough(
            `http://127.0.0.1:${(refusing.address() as AddressInfo).port}/graphql`,
          );
          expect(answer.data).toEqual({ order: { id, items: [{ product: null }, { product: null }] } });
          // One request for both lines, counted as what the client was told.
          expect(outcomes).toEqual({ [expected.outcome]: 1 });
          const error = {
            message: expected.message,
            path: ['order', 'items', 'product'],
            extensions: { code: expected.code, subgraph: 'inventory' },
          };
          expect(answer.errors).toEqual([error, error]);
          expect(JSON.stringify(answer)).not.toMatch(/shutting down|_entities|127\.0\.0\.1/);
          expect(logged).toHaveLength(1);
          expect(logged[0]).toMatchObject({ level: 40, msg: expected.log, subgraph: 'inventory', status });
          expect(JSON.stringify(logged[0]?.err)).toMatch(/shutting down/);
        } finally {
          await new Promise((resolve) => refusing.close(resolve));
        }
      },
    );
  });

  it('forwards an operation one service answers whole to it as the client sent it, and passes its answer back as it came', async () => {
    // A stand-in Inventory Service that records what it is sent and answers what the gateway would
    // never produce itself: the runtime, executing the operation again, would refuse a null name.
    const received: { body: string; authorization: string | undefined }[] = [];
    const answer = '{"data":{"products":{"nodes":[{"name":null}]}},"extensions":{"from":"stand-in"}}';
    const standIn = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ body: Buffer.concat(chunks).toString(), authorization: req.headers.authorization });
        res.writeHead(200, { 'content-type': 'application/json' }).end(answer);
      });
    });
    await new Promise<void>((resolve) => standIn.listen(0, '127.0.0.1', resolve));
    const forwarding = await gatewayWith({ INVENTORY_URL: `http://127.0.0.1:${(standIn.address() as AddressInfo).port}/graphql` });
    try {
      const body = JSON.stringify({ query: 'query Names($n: Int) { products(first: $n) { nodes { name } } }', variables: { n: 1 } });
      const res = await fetch(`http://127.0.0.1:${forwarding.port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.admin}` },
        body,
      });
      expect(await res.text()).toBe(answer);
      expect(received).toEqual([{ body, authorization: `Bearer ${tokens.admin}` }]);
    } finally {
      await forwarding.close();
      await new Promise((resolve) => standIn.close(resolve));
    }
  });

  describe('a request forwarded whole to a service that fails it', () => {
    /** The answer of a gateway whose Inventory Service is at `inventoryUrl` to a catalog query (that service's alone), and its warnings. */
    const forwardTo = async (inventoryUrl: string) => {
      const lines: Record<string, unknown>[] = [];
      const forwarding = await gatewayWith({ INVENTORY_URL: inventoryUrl }, capturingLogger('gateway', lines));
      try {
        const res = await fetch(`http://127.0.0.1:${forwarding.port}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.admin}` },
          body: JSON.stringify({ query: '{ products(first: 1) { nodes { name } } }' }),
          signal: AbortSignal.timeout(10_000),
        });
        return {
          res,
          body: (await res.json()) as unknown,
          outcomes: await subgraphOutcomes(forwarding.port, 'inventory'),
          logged: lines.filter((l) => (l.level as number) >= 40),
        };
      } finally {
        await forwarding.close();
      }
    };
    /** The same, with `standIn` as the Inventory Service. */
    const forwardToStandIn = async (standIn: Server) => {
      await new Promise<void>((resolve) => standIn.listen(0, '127.0.0.1', resolve));
      try {
        return await forwardTo(`http://127.0.0.1:${(standIn.address() as AddressInfo).port}/graphql`);
      } finally {
        standIn.closeAllConnections();
        await new Promise((resolve) => standIn.close(resolve));
      }
    };

    it.each([
      [
        503,
        'a draining service',
        { 'content-type': 'application/json', 'retry-after': '1', [DRAINING_HEADER]: 'true' },
        '{"status":"shutting down"}',
        DRAINING,
      ],
      [
        503,
        'a proxy whose connection to it was reset',
        { 'content-type': 'text/plain', 'retry-after': '2' },
        'upstream connect error or disconnect/reset before headers',
        UNKNOWN,
      ],
      [
        502,
        'a load balancer in front of a dead one',
        { 'content-type': 'text/html' },
        '<h1>502 Bad Gateway</h1><p>lb-7 10.0.0.7</p>',
        UNKNOWN,
      ],
      [
        504,
        'a load balancer that timed out on it',
        { 'content-type': 'text/html', 'retry-after': '5' },
        '<h1>504 Gateway Timeout</h1>',
        UNKNOWN,
      ],
    ] as const)(
      'answers %i from %s with that status and its own error, at once, none of the body, logs it once and counts it by what happened',
      async (status, _who, headers, body, expected) => {
        // The body is begun and never ended: the answer must not wait for it.
        const standIn = createServer((req, res) => {
          req.resume();
          res.writeHead(status, headers).write(body);
        });
        const { res, body: answer, outcomes, logged } = await forwardToStandIn(standIn);
        expect(res.status).toBe(status);
        expect(outcomes).toEqual({ [expected.outcome]: 1 });
        expect(res.headers.get('content-type')).toMatch(/^application\/json/);
        expect(res.headers.get('retry-after')).toBe((headers as Record<string, string>)['retry-after'] ?? null);
        expect(answer).toEqual({ errors: [{ message: expected.message, extensions: { code: expected.code, subgraph: 'inventory' } }] });
        expect(logged).toHaveLength(1);
        expect(logged[0]).toMatchObject({ level: 40, msg: expected.log, subgraph: 'inventory', status });
      },
    );

    it('answers a connection dropped under the request as SUBGRAPH_OUTCOME_UNKNOWN (502), counted unknown: it may have been acted on', async () => {
      const standIn = createServer((req) => req.socket.destroy());
      const { res, body: answer, outcomes, logged } = await forwardToStandIn(standIn);
      expect(res.status).toBe(502);
      expect(outcomes).toEqual({ unknown: 1 });
      expect(answer).toEqual({ errors: [{ message: UNKNOWN.message, extensions: { code: UNKNOWN.code, subgraph: 'inventory' } }] });
      expect(logged).toMatchObject([{ level: 40, msg: UNKNOWN.log, subgraph: 'inventory' }]);
    });

    it('answers a connection refused as SUBGRAPH_UNREACHABLE (502), counted unreachable: nothing was sent', async () => {
      const { res, body: answer, outcomes, logged } = await forwardTo(`http://127.0.0.1:${await freePort()}/graphql`);
      expect(res.status).toBe(502);
      expect(outcomes).toEqual({ unreachable: 1 });
      expect(answer).toEqual({
        errors: [{ message: UNREACHABLE.message, extensions: { code: UNREACHABLE.code, subgraph: 'inventory' } }],
      });
      expect(logged).toMatchObject([{ level: 40, msg: UNREACHABLE.log, subgraph: 'inventory' }]);
    });
  });

  it('lets a customer see only its own orders through it', async () => {
    const bobs = await createOrder('bob', 1);
    const alice = via('alice');
    expect((await alice.data<{ order: unknown }>(ORDER_WITH_PRODUCTS, { id: bobs })).order).toBeNull();
    const listed = await alice.data<{ orders: { nodes: { customerId: string }[] } }>('{ orders(first: 50) { nodes { customerId } } }');
    expect(listed.orders.nodes.length).toBeGreaterThan(0);
    expect(new Set(listed.orders.nodes.map((o) => o.customerId))).toEqual(new Set(['alice']));
  });

  /** A subscription's whole SSE answer, HTTP status and body, read for `ms` at most (a stream left open is cut). */
  const sseAnswer = async (token: string, query: string, variables: Record<string, unknown>, ms = 3_000) => {
    const res = await fetch(gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.timeout(ms),
    });
    let text = '';
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (let read = await reader.read(); !read.done; read = await reader.read()) text += read.value;
    } catch {
      text += '<still open>';
    }
    return `${res.status} ${text}`;
  };

  it("answers a customer subscribing to another's order over SSE as for a missing order, and sends it nothing", async () => {
    const alices = await createOrder('alice', 1);
    await eventually(
      () => via('alice').data<{ order: { status: string } }>(ORDER_WITH_PRODUCTS, { id: alices }),
      (r) => r.order.status === 'CONFIRMED',
    );
    const missing = `ORD-${randomUUID()}`;
    const query = 'subscription($id: ID!) { orderStatusChanged(id: $id) { id status } }';
    const asked = sseAnswer(tokens.bob, query, { id: alices });
    // Whatever bob's stream holds, alice's order changes while it is open.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await via('alice').data('mutation($id: ID!) { cancelOrder(id: $id) { id } }', { id: alices });
    const answer = (await asked).replaceAll(alices, 'ORDER');
    expect(answer).toBe((await sseAnswer(tokens.bob, query, { id: missing })).replaceAll(missing, 'ORDER'));
    expect(answer).toMatch(/"code":"NOT_FOUND"/);
    expect(answer).not.toMatch(/CANCELLED|still open/);
  });

  it("answers a service's own error in a join as the service does directly, without the service's name", async () => {
    const missing = `ORD-${randomUUID()}`;
    const joined = await via('alice').request('mutation($id: ID!) { cancelOrder(id: $id) { id items { product { name } } } }', {
      id: missing,
    });
    const direct = await graphqlClient(`http://127.0.0.1:${orders.port}/graphql`, { token: tokens.alice }).request(
      'mutation($id: ID!) { cancelOrder(id: $id) { id } }',
      { id: missing },
    );
    expect(direct.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    // What a client reads of an error, but `locations`: those point into the document the service was sent, which the runtime writes itself.
    const read = (errors: typeof direct.errors) =>
      errors?.map((e) => ({ message: e.message, path: (e as { path?: unknown }).path, extensions: e.extensions }));
    expect(read(joined.errors)).toEqual(read(direct.errors));
  });

  it('tells a subscriber whose Order Service stream is cut mid-way that the service stopped answering, without the connection error, logs it once and counts the cut stream', async () => {
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: orders.port });
    const lines: Record<string, unknown>[] = [];
    const watched = await gatewayWith({ ORDERS_URL: `http://127.0.0.1:${proxy.port}/graphql` }, capturingLogger('gateway', lines));
    const id = await createOrder('alice', 1);
    const sub = await sseSubscribe<{ orderStatusChanged: { status: string } }>(
      `http://127.0.0.1:${watched.port}/graphql`,
      'subscription($id: ID!) { orderStatusChanged(id: $id) { status } }',
      { id },
      { authorization: `Bearer ${tokens.alice}` },
    );
    try {
      // The order as it is, at once: the stream is open end to end.
      await sub.waitFor((list) => list.length > 0);
      proxy.cut();
      expect(await Promise.race([sub.ended.then(() => 'ended'), new Promise((r) => setTimeout(() => r('still open'), 10_000))])).toBe(
        'ended',
      );
      expect(sub.errors).toEqual([
        {
          message: 'The orders service stopped answering.',
          path: ['orderStatusChanged'],
          extensions: { code: 'SUBGRAPH_UNREACHABLE', subgraph: 'orders' },
        },
      ]);
      expect(sub.completed).toBe(true);
      const logged = lines.filter((l) => (l.level as number) >= 40);
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatchObject({ level: 40, msg: "a service's answer was cut off", subgraph: 'orders' });
      const metrics = await (await fetch(`http://127.0.0.1:${watched.port}/metrics`)).text();
      expect(metricSum(metrics, 'stockflow_gateway_subgraph_streams_cut_total', { subgraph: 'orders' })).toBe(1);
    } finally {
      sub.close();
      await watched.close();
      await proxy.close();
      // The unit it holds goes back to the stock the other tests count on.
      await via('alice').data('mutation($id: ID!) { cancelOrder(id: $id) { id } }', { id });
    }
  });

  it('lets a payments token record a payment and read the order it pays for, through the one graph', async () => {
    const id = await createOrder('alice', 2);
    const { order } = await eventually(
      () =>
        via('admin').data<{ order: { status: string; totalCents: number } }>('query($id: ID!) { order(id: $id) { status totalCents } }', {
          id,
        }),
      (r) => r.order.status === 'CONFIRMED',
    );
    const paid = await via('payments').data<{ recordPayment: { outcome: string } }>(
      'mutation($input: RecordPaymentInput!) { recordPayment(input: $input) { outcome } }',
      { input: { orderId: id, paymentId: `psp-${id}`, amountCents: order.totalCents, currency: 'EUR' } },
    );
    expect(paid.recordPayment.outcome).toBe('PAID');
    const read = await via('payments').data<{ order: unknown }>(
      'query($id: ID!) { order(id: $id) { status totalCents payments { paymentId } } }',
      { id },
    );
    expect(read.order).toEqual({ status: 'PAID', totalCents: order.totalCents, payments: [{ paymentId: `psp-${id}` }] });
    // Its products are the catalog's, which it may not read: the order comes, each product null with why.
    const withProducts = await via('payments').request<{ order: { items: { product: unknown }[] } }>(ORDER_WITH_PRODUCTS, { id });
    expect(withProducts.data?.order.items).toEqual([{ quantity: 2, product: null }]);
    expect(withProducts.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it.each([
    ['createOrder', 'mutation { createOrder(input: {customerId: "alice", items: [{productId: "1", quantity: 1}]}) { id } }'],
    ['orders', '{ orders { totalCount } }'],
    ['recentOrders', '{ recentOrders { id } }'],
    ['orderCounts', '{ orderCounts { count } }'],
    ['cancelOrder', 'mutation { cancelOrder(id: "ORD-1") { id } }'],
    ['fulfillOrder', 'mutation { fulfillOrder(id: "ORD-1") { id } }'],
    ['reconcilePendingOrders', 'mutation { reconcilePendingOrders { republished } }'],
    ['ordersDeadLetters', '{ ordersDeadLetters(queue: "stock.orders") { id } }'],
    ['replayOrdersDeadLetters', 'mutation { replayOrdersDeadLetters(queue: "stock.orders", all: true) }'],
    ['product', '{ product(id: "1") { name } }'],
    ['products', '{ products { nodes { name } } }'],
    ['stockMovements', '{ stockMovements(productId: "1") { nodes { orderId } } }'],
    ['createProduct', 'mutation { createProduct(input: {sku: "GW-PSP", name: "n", initialStock: 1}) { id } }'],
    ['restock', 'mutation { restock(productId: "1", quantity: 5) { id } }'],
    ['inventoryDeadLetters', '{ inventoryDeadLetters(queue: "order.created.inventory") { id } }'],
    ['replayInventoryDeadLetters', 'mutation { replayInventoryDeadLetters(queue: "order.created.inventory", all: true) }'],
  ])('refuses %s to a payments token through the one graph (FORBIDDEN)', async (_name, query) => {
    const res = await via('payments').request(query);
    expect(res.errors?.[0]?.extensions?.code, JSON.stringify(res)).toBe('FORBIDDEN');
  });

  it.each([
    ['orderStatusChanges', 'subscription { orderStatusChanges { id } }'],
    ['orderStatusChanged', 'subscription($id: ID!) { orderStatusChanged(id: $id) { id } }'],
    ['customerOrderStatusChanged', 'subscription { customerOrderStatusChanged(customerId: "alice") { id } }'],
  ])('refuses the subscription %s to a payments token through the one graph (FORBIDDEN)', async (_name, query) => {
    const id = await createOrder('alice', 1);
    expect(await sseAnswer(tokens.payments, query, { id })).toMatch(/"code":"FORBIDDEN"/);
  });

  it('refuses a request without a valid token with 401 UNAUTHENTICATED', async () => {
    const res = await fetch(gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ products(first: 1) { nodes { name } } }' }),
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { errors: { extensions: { code: string } }[] }).errors[0]?.extensions.code).toBe('UNAUTHENTICATED');
  });

  it('delivers an order over SSE as it is, then its change, with the product joined in, and ends after a final status', async () => {
    const id = await createOrder('alice', 1);
    await eventually(
      () => via('alice').data<{ order: { status: string } }>(ORDER_WITH_PRODUCTS, { id }),
      (r) => r.order.status === 'CONFIRMED',
    );
    const sub = await sseSubscribe<{ orderStatusChanged: { status: string; items: Line[] } }>(
      gatewayUrl,
      'subscription($id: ID!) { orderStatusChanged(id: $id) { status items { product { name } } } }',
      { id },
      { authorization: `Bearer ${tokens.alice}` },
    );
    try {
      // It was confirmed before anyone subscribed: the subscriber is told at once.
      const [now] = await sub.waitFor((list) => list.length > 0);
      expect(now?.orderStatusChanged).toEqual({ status: 'CONFIRMED', items: [{ product: { name: 'Gateway mug' } }] });
      await via('alice').data('mutation($id: ID!) { cancelOrder(id: $id, reason: "changed my mind") { id } }', { id });
      const events = await sub.waitFor((list) => list.some((e) => e.orderStatusChanged.status === 'CANCELLED'));
      expect(events.at(-1)?.orderStatusChanged.items[0]?.product?.name).toBe('Gateway mug');
      // Nothing follows a final status: the gateway passes the end of the stream on.
      expect(await Promise.race([sub.ended.then(() => 'ended'), new Promise((r) => setTimeout(() => r('still open'), 10_000))])).toBe(
        'ended',
      );
      expect(sub.completed).toBe(true);
      expect(sub.events.map((e) => e.orderStatusChanged.status)).toEqual(['CONFIRMED', 'CANCELLED']);
      expect(sub.errors).toEqual([]);
    } finally {
      sub.close();
    }
  });

  it('refuses a body over the limit with 413', async () => {
    const res = await fetch(gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.admin}` },
      body: JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(1_100_000) } }),
    });
    expect(res.status).toBe(413);
  });

  it('refuses a POST of a form or plain text with 415, as the services do, and writes nothing', async () => {
    const mutation = 'mutation { createProduct(input: {sku: "GW-CSRF", name: "Forged", initialStock: 1}) { id } }';
    for (const [type, body] of [
      ['application/x-www-form-urlencoded', new URLSearchParams({ query: mutation }).toString()],
      ['text/plain', JSON.stringify({ query: mutation })],
    ] as const) {
      const res = await fetch(gatewayUrl, {
        method: 'POST',
        headers: { 'content-type': type, authorization: `Bearer ${tokens.admin}` },
        body,
      });
      expect(res.status).toBe(415);
      expect(((await res.json()) as { errors: { extensions: { code: string } }[] }).errors[0]?.extensions.code).toBe('BAD_REQUEST');
    }
    const { products } = await via('admin').data<{ products: { nodes: unknown[] } }>('{ products(search: "GW-CSRF") { nodes { id } } }');
    expect(products.nodes).toEqual([]);
  });

  it('leaves the Inventory Service, asked directly, counting _entities (what the gateway sends it) by its representations', async () => {
    // Each product's ledger is a query (100) and a count (100): 1,000 of them are over the 200,000
    // limit, which a list counted at its default 500 items would have let through.
    const representations = Array.from({ length: 1_000 }, (_, i) => ({ __typename: 'Product', id: String(i + 1) }));
    const inventoryAlone = graphqlClient(`http://127.0.0.1:${inventory.port}/graphql`, { token: tokens.admin });
    const query = 'query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { movements(first: 0) { totalCount } } } }';
    const res = await inventoryAlone.request(query, { r: representations });
    expect(res.errors?.[0]?.message).toMatch(/Cost limit/);
  });

  it('leaves each service working on its own, with _service { sdl } for an admin when introspection is off', async () => {
    const ordersAlone = graphqlClient(`http://127.0.0.1:${orders.port}/graphql`, { token: tokens.alice });
    const { order } = await ordersAlone.data<{ order: unknown }>('query($id: ID!) { order(id: $id) { items { productId quantity } } }', {
      id: await createOrder('alice', 1),
    });
    expect(order).toEqual({ items: [{ productId, quantity: 1 }] });
    // With introspection off, the SDL is an admin's only.
    expect((await ordersAlone.request('{ _service { sdl } }')).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const asAdmin = graphqlClient(`http://127.0.0.1:${orders.port}/graphql`, { token: tokens.admin });
    const { _service } = await asAdmin.data<{ _service: { sdl: string } }>('{ _service { sdl } }');
    expect(_service.sdl).toContain('type OrderLine\n  @key(fields: "productId", resolvable: false)');
    const anonymous = await fetch(`http://127.0.0.1:${inventory.port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ _service { sdl } }' }),
    });
    expect(anonymous.status).toBe(401);
  });

  /** How many messages a service has parked from one of its queues. */
  const parkedCount = (service: RunningService, queue: string) =>
    fetch(`http://127.0.0.1:${service.port}/metrics`)
      .then((r) => r.text())
      .then((text) => metricSum(text, 'stockflow_messages_consumed_total', { queue, outcome: 'parked' }));

  it("lists and replays each service's parked messages through the one graph, for an admin only", async () => {
    // A body that is not JSON, parked by each service: the Inventory Service's from order.created,
    // the Order Service's from a stock answer.
    const bodies = { inventory: `not json ${randomUUID()}`, orders: `not json ${randomUUID()}` };
    const amqp = await rawAmqp(inject('amqpUrl'));
    type Parked = { id: string; body: string }[];
    type Listed = { inventoryDeadLetters: Parked; ordersDeadLetters: Parked };
    const LIST = `{ inventoryDeadLetters(queue: "${queues.orderCreatedInventory.queue}") { id body }
      ordersDeadLetters(queue: "${queues.stockOrders.queue}") { id body } }`;
    try {
      await amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCreated, bodies.inventory);
      await amqp.publish(EXCHANGES.inventory, ROUTING_KEYS.stockReserved, bodies.orders);
      const listed = await eventually(
        () => via('admin').data<Listed>(LIST),
        (d) => d.inventoryDeadLetters.some((m) => m.body === bodies.inventory) && d.ordersDeadLetters.some((m) => m.body === bodies.orders),
      );
      const inventoryId = listed.inventoryDeadLetters.find((m) => m.body === bodies.inventory)!.id;
      const ordersId = listed.ordersDeadLetters.find((m) => m.body === bodies.orders)!.id;

      for (const query of [LIST, `mutation { replayOrdersDeadLetters(queue: "${queues.stockOrders.queue}", all: true) }`]) {
        const refused = await via('alice').request(query);
        expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      }
      // A queue of the other service is not this one's to replay.
      const wrongService = await via('admin').request(
        `mutation { replayOrdersDeadLetters(queue: "${queues.orderCreatedInventory.queue}", all: true) }`,
      );
      expect(wrongService.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');

      const before = [
        await parkedCount(inventory, queues.orderCreatedInventory.queue),
        await parkedCount(orders, queues.stockOrders.queue),
      ];
      const replayed = await via('admin').data<{ replayInventoryDeadLetters: number; replayOrdersDeadLetters: number }>(
        `mutation { replayInventoryDeadLetters(queue: "${queues.orderCreatedInventory.queue}", ids: ["${inventoryId}"])
          replayOrdersDeadLetters(queue: "${queues.stockOrders.queue}", ids: ["${ordersId}"]) }`,
      );
      expect(replayed).toEqual({ replayInventoryDeadLetters: 1, replayOrdersDeadLetters: 1 });
      // Still not JSON: each went back to its queue and was parked again by its consumer.
      await eventually(
        async () => [await parkedCount(inventory, queues.orderCreatedInventory.queue), await parkedCount(orders, queues.stockOrders.queue)],
        ([inventoryParked, ordersParked]) => inventoryParked === before[0]! + 1 && ordersParked === before[1]! + 1,
      );
    } finally {
      // Nothing left parked for the tests after this one.
      await amqp.drainQueue(dlqName(queues.orderCreatedInventory.queue));
      await amqp.drainQueue(dlqName(queues.stockOrders.queue));
      await amqp.close();
    }
  });

  it('holds the whole operation to the cost limit, though each service would take its share', async () => {
    const limited = await gatewayWith({ GRAPHQL_MAX_COST: '500' });
    try {
      const client = graphqlClient(`http://127.0.0.1:${limited.port}/graphql`, { token: tokens.admin });
      // Each about 350: a page of 50 (its rows and fields) and its two queries.
      const products = 'products(first: 50) { nodes { name } }';
      const orderPage = 'orders(first: 50) { nodes { id } }';
      for (const share of [products, orderPage]) expect((await client.request(`{ ${share} }`)).errors).toBeUndefined();
      const both = await client.request(`{ ${products} ${orderPage} }`);
      expect(both.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(both.errors?.[0]?.message).toMatch(/Cost limit of 500 exceeded/);
      // One service's alone, which the gateway would forward whole: counted before it is sent (the service's own limit is higher).
      const twice = await client.request(`{ a: ${products} b: ${products} }`);
      expect(twice.errors?.[0]?.message).toMatch(/Cost limit of 500 exceeded/);
      // The same over GET.
      const url = `http://127.0.0.1:${limited.port}/graphql`;
      const viaGet = await fetch(`${url}?query=${encodeURIComponent(`{ ${products} ${orderPage} }`)}`, {
        headers: { authorization: `Bearer ${tokens.admin}`, accept: 'application/json' },
      });
      expect(await viaGet.text()).toMatch(/Cost limit of 500 exceeded/);
      // And a subscription over SSE: each change would carry up to 100 lines and 50 payments.
      const subscription = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens.admin}`, 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({
          query:
            'subscription { orderStatusChanged(id: "ORD-1") { id items { quantity product { name priceCents availableStock } } payments { paymentId amountCents currency outcome reason } } }',
        }),
        signal: AbortSignal.timeout(10_000),
      });
      expect(await subscription.text()).toMatch(/Cost limit of 500 exceeded/);
    } finally {
      await limited.close();
    }
  });

  it('answers CORS as the services do: only to a listed origin, GET and POST, no credentials', async () => {
    const shop = 'https://shop.example';
    const cors = await gatewayWith({ CORS_ORIGINS: shop });
    try {
      const url = `http://127.0.0.1:${cors.port}/graphql`;
      const corsHeaders = (res: Response) => Object.fromEntries([...res.headers].filter(([name]) => name.startsWith('access-control-')));
      const preflight = (origin: string) =>
        fetch(url, {
          method: 'OPTIONS',
          headers: { origin, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'content-type, authorization' },
        });
      const listed = await preflight(shop);
      expect(listed.status).toBe(204);
      expect(corsHeaders(listed)).toEqual({
        'access-control-allow-origin': shop,
        'access-control-allow-methods': 'GET, POST',
        'access-control-allow-headers': 'content-type, authorization',
        'access-control-max-age': '600',
      });
      expect(corsHeaders(await preflight('https://evil.example'))).toEqual({});
      const answer = await fetch(url, {
        method: 'POST',
        headers: { origin: shop, 'content-type': 'application/json', authorization: `Bearer ${tokens.alice}` },
        body: '{"query":"{ __typename }"}',
      });
      expect(corsHeaders(answer)).toEqual({ 'access-control-allow-origin': shop });
      expect(answer.headers.get('vary')).toMatch(/origin/i);
      // An answer forwarded from a service carries them too.
      const forwarded = await fetch(url, {
        method: 'POST',
        headers: { origin: shop, 'content-type': 'application/json', authorization: `Bearer ${tokens.alice}` },
        body: '{"query":"{ products(first: 1) { nodes { id } } }"}',
      });
      expect(forwarded.status).toBe(200);
      expect(corsHeaders(forwarded)).toEqual({ 'access-control-allow-origin': shop });
      expect(forwarded.headers.get('vary')).toMatch(/origin/i);
    } finally {
      await cors.close();
    }
  });

  it('with authentication off, answers only requests addressed to localhost or an IP address (421: DNS rebinding)', async () => {
    const open = await gatewayWith({ AUTH_JWT_SECRET: '', AUTH_DISABLED: 'true' });
    try {
      const ask = (host: string) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = request(
            { host: '127.0.0.1', port: open.port, method: 'POST', path: '/graphql', headers: { host, 'content-type': 'application/json' } },
            (res) => {
              let body = '';
              res.on('data', (chunk: Buffer) => (body += chunk.toString()));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
            },
          );
          req.on('error', reject);
          req.end('{"query":"{ __typename }"}');
        });
      const rebound = await ask(`evil.example:${open.port}`);
      expect(rebound.status).toBe(421);
      expect(rebound.body).toMatch(/only requests addressed to localhost or an IP address/);
      expect((await ask(`localhost:${open.port}`)).status).toBe(200);
    } finally {
      await open.close();
    }
  });

  it('with authentication off, marks each answer so and warns once of a token it does not check', async () => {
    const lines: Record<string, unknown>[] = [];
    const open = await gatewayWith({ AUTH_JWT_SECRET: '', AUTH_DISABLED: 'true' }, capturingLogger('gateway', lines));
    try {
      for (const authorization of [undefined, 'Bearer garbage', 'Bearer garbage', `Bearer ${tokens.alice}`]) {
        const res = await fetch(`http://127.0.0.1:${open.port}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
          body: '{"query":"{ __typename }"}',
        });
        expect(res.status, authorization).toBe(200);
        expect(res.headers.get(AUTH_NOTICE_HEADER), authorization).toBe('disabled');
      }
      expect(lines.filter((l) => /brought credentials .* authentication is off/.test(String(l.msg)))).toHaveLength(1);
      // An answer forwarded from a service is marked too.
      const forwarded = await fetch(`http://127.0.0.1:${open.port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.alice}` },
        body: '{"query":"{ products(first: 1) { nodes { id } } }"}',
      });
      expect(forwarded.status).toBe(200);
      expect(forwarded.headers.get(AUTH_NOTICE_HEADER)).toBe('disabled');
    } finally {
      await open.close();
    }
    // With it on, nothing is marked.
    const res = await fetch(gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.alice}` },
      body: '{"query":"{ __typename }"}',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get(AUTH_NOTICE_HEADER)).toBeNull();
  });

  it('stays ready while one service is down, reporting it degraded, and still serves the half that works; not with both down', async () => {
    // A port nothing listens on: the Inventory Service is gone.
    const deadPort = await freePort();
    const halfGateway = await gatewayWith({ INVENTORY_URL: `http://127.0.0.1:${deadPort}/graphql` });
    try {
      const ready = await fetch(`http://127.0.0.1:${halfGateway.port}/ready`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'degraded', checks: { orders: 'up', inventory: 'down' } });
      const id = await createOrder('alice', 1);
      const half = graphqlClient(`http://127.0.0.1:${halfGateway.port}/graphql`, { token: tokens.alice });
      const answer = await half.data<{ order: { id: string } }>('query($id: ID!) { order(id: $id) { id } }', { id });
      expect(answer.order.id).toBe(id);
    } finally {
      await halfGateway.close();
    }
    // With both gone it can serve nothing: out of its load balancer.
    const nothing = await gatewayWith({
      ORDERS_URL: `http://127.0.0.1:${deadPort}/graphql`,
      INVENTORY_URL: `http://127.0.0.1:${deadPort}/graphql`,
    });
    try {
      const ready = await fetch(`http://127.0.0.1:${nothing.port}/ready`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ status: 'not ready', checks: { orders: 'down', inventory: 'down' } });
    } finally {
      await nothing.close();
    }
  });

  describe('with production settings and low limits, in front of services that must not be called', () => {
    let strict: RunningGateway;
    let upstream: Server;
    let upstreamCalls = 0;
    let client: Client;

    beforeAll(async () => {
      upstream = createServer((_req, res) => {
        upstreamCalls += 1;
        res.writeHead(500).end();
      });
      await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
      const url = `http://127.0.0.1:${(upstream.address() as { port: number }).port}/graphql`;
      strict = await gatewayWith({
        NODE_ENV: 'production',
        ORDERS_URL: url,
        INVENTORY_URL: url,
        GRAPHQL_MAX_DEPTH: '3',
        GRAPHQL_MAX_TOKENS: '50',
      });
      client = graphqlClient(`http://127.0.0.1:${strict.port}/graphql`, { token: tokens.alice });
    });
    afterAll(async () => {
      await strict?.close();
      await new Promise((resolve) => upstream?.close(resolve));
    });

    it('refuses introspection', async () => {
      const res = await client.request('{ __schema { types { name } } }');
      expect(res.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(res.errors?.[0]?.message).toMatch(/introspection/i);
    });

    it('refuses a document over the token limit, without calling a service', async () => {
      const res = await client.request(`{ products(first: 1) { nodes { ${'name '.repeat(60)}} } }`);
      expect(res.errors?.[0]?.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
      expect(res.errors?.[0]?.message).toMatch(/token/i);
      expect(upstreamCalls).toBe(0);
    });

    it('refuses a document over the depth limit, without calling a service', async () => {
      const res = await client.request('{ orders(first: 1) { nodes { items { product { name } } } } }');
      expect(res.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(res.errors?.[0]?.message).toMatch(/depth/i);
      expect(upstreamCalls).toBe(0);
    });
  });
});
