import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { EXCHANGES, ROUTING_KEYS } from '@stockflow/contracts';
import { AUTH_NOTICE_HEADER } from '@stockflow/graphql';
import { createLogger, metricSum } from '@stockflow/observability';
import { signToken } from '@stockflow/client';
import type { DeadLetter } from '@stockflow/messaging';
import type { RunningService } from '@stockflow/runtime';
import {
  capturingLogger,
  createTestDatabase,
  eventually,
  graphqlClient,
  rawAmqp,
  serviceTestEnv,
  sseSubscribe,
  type TestDatabase,
} from '@stockflow/testing';
import { loadInventoryConfig, startInventoryService } from '@stockflow/inventory';
import { loadOrdersConfig } from '../src/config.ts';
import { startOrdersService } from '../src/service.ts';

const servicesUnavailable = inject('servicesUnavailable');
const logger = createLogger({ name: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const SECRET = 'a-test-secret-that-is-at-least-32-characters-long';

type Client = ReturnType<typeof graphqlClient>;

describe.skipIf(servicesUnavailable)('authentication and authorisation', () => {
  let ordersDb: TestDatabase;
  let inventoryDb: TestDatabase;
  let orders: RunningService;
  let inventory: RunningService;
  const clients: Record<string, { orders: Client; inventory: Client }> = {};
  let productId: number;

  const base = (db: TestDatabase) => serviceTestEnv(db, inject('amqpUrl'));
  const as = (who: 'anonymous' | 'admin' | 'alice' | 'bob' | 'payments') => clients[who] as { orders: Client; inventory: Client };

  beforeAll(async () => {
    ordersDb = await createTestDatabase('auth_orders');
    inventoryDb = await createTestDatabase('auth_inventory');
    inventory = await startInventoryService(loadInventoryConfig({ ...base(inventoryDb), AUTH_JWT_SECRET: SECRET }), logger);
    orders = await startOrdersService(
      loadOrdersConfig({ ...base(ordersDb), AUTH_JWT_SECRET: SECRET, CREATE_ORDER_RATE_LIMIT: '1', CREATE_ORDER_RATE_BURST: '3' }),
      logger,
    );
    const tokens = {
      anonymous: undefined,
      admin: await signToken(SECRET, { sub: 'ops', role: 'admin' }),
      alice: await signToken(SECRET, { sub: 'alice', role: 'customer' }),
      bob: await signToken(SECRET, { sub: 'bob', role: 'customer' }),
      payments: await signToken(SECRET, { sub: 'psp-webhook', role: 'payments' }),
    };
    for (const [who, token] of Object.entries(tokens)) {
      clients[who] = {
        orders: graphqlClient(`http://127.0.0.1:${orders.port}/graphql`, { token }),
        inventory: graphqlClient(`http://127.0.0.1:${inventory.port}/graphql`, { token }),
      };
    }
    productId = Number(
      (
        await as('admin').inventory.data<{ createProduct: { id: string } }>(
          'mutation { createProduct(input: {sku: "AUTH-1", name: "Guarded", initialStock: 100}) { id } }',
        )
      ).createProduct.id,
    );
    await as('admin').inventory.data('mutation { createStockLocation(input: {code: "AUTH-EAST", name: "Transfers go here"}) { id } }');
  });
  afterAll(async () => {
    await orders?.close();
    await inventory?.close();
    await ordersDb?.drop();
    await inventoryDb?.drop();
  });

  const codeOf = async (client: Client, query: string, variables?: Record<string, unknown>) => {
    const res = await client.request(query, variables);
    return res.errors?.[0]?.extensions?.code;
  };
  const createOrder = (client: Client, customerId: string) =>
    client.request<{ createOrder: { id: string } }>('mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }', {
      input: { customerId, items: [{ productId: String(productId), quantity: 1 }] },
    });

  it('refuses every request without a valid token, with 401 and UNAUTHENTICATED, on both services', async () => {
    const forged = await signToken('another-secret-that-is-also-32-characters-long', { sub: 'ops', role: 'admin' });
    const expired = await signToken(SECRET, { sub: 'ops', role: 'admin' }, '-1m');
    for (const port of [orders.port, inventory.port]) {
      for (const token of [undefined, 'not-a-jwt', forged, expired]) {
        const res = await graphqlClient(`http://127.0.0.1:${port}/graphql`, { token }).request('{ __typename }');
        expect(res.status).toBe(401);
        expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      }
    }
    const sse = await fetch(`http://127.0.0.1:${orders.port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: 'subscription { customerOrderStatusChanged(customerId: "alice") { id } }' }),
    });
    expect(sse.status).toBe(401);
  });

  /** The guarded product's name and available stock, as an admin reads them back. */
  const guarded = async () =>
    (
      await as('admin').inventory.data<{ product: { name: string; availableStock: number } }>(
        `{ product(id: "${productId}") { name availableStock } }`,
      )
    ).product;
  /** Parks a body that is not JSON in the DLQ of order.created.inventory; resolves with it once an admin sees it there. */
  const parkMalformed = async () => {
    const body = `not json ${randomUUID()}`;
    const amqp = await rawAmqp(inject('amqpUrl'));
    await amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCreated, body).finally(() => amqp.close());
    const { deadLetters } = await eventually(
      () =>
        as('admin').inventory.data<{ deadLetters: Pick<DeadLetter, 'id' | 'body'>[] }>(
          '{ deadLetters(queue: "order.created.inventory") { id body } }',
        ),
      (d) => d.deadLetters.some((m) => m.body === body),
    );
    return deadLetters.find((m) => m.body === body) as Pick<DeadLetter, 'id' | 'body'>;
  };
  /** How many messages the Inventory Service has parked from order.created.inventory. */
  const parkedCount = () =>
    fetch(`http://127.0.0.1:${inventory.port}/metrics`)
      .then((r) => r.text())
      .then((text) => metricSum(text, 'stockflow_messages_consumed_total', { queue: 'order.created.inventory', outcome: 'parked' }));

  interface Before {
    availableStock: number;
    parked: Pick<DeadLetter, 'id' | 'body'>;
    parkedCount: number;
  }
  // The customer is refused first; the admin then sends the same request, which must succeed:
  // checked on what it returns and on what is read back afterwards.
  it.each<{ name: string; parks?: boolean; query: (before: Before) => string; check: (data: unknown, before: Before) => Promise<void> }>([
    {
      name: 'createProduct',
      query: () => 'mutation { createProduct(input: {sku: "BY-ADMIN", name: "n", initialStock: 1}) { id sku } }',
      async check(data) {
        const created = (data as { createProduct: { id: string; sku: string } }).createProduct;
        expect(created.sku).toBe('BY-ADMIN');
        const read = await as('bob').inventory.data<{ product: { sku: string } }>(`{ product(id: "${created.id}") { sku } }`);
        expect(read.product.sku).toBe('BY-ADMIN');
      },
    },
    {
      name: 'updateProduct',
      query: () => `mutation { updateProduct(id: "${productId}", input: {name: "Renamed by an admin"}) { name } }`,
      async check(data) {
        expect((data as { updateProduct: { name: string } }).updateProduct.name).toBe('Renamed by an admin');
        expect((await guarded()).name).toBe('Renamed by an admin');
      },
    },
    {
      name: 'restock',
      query: () => `mutation { restock(productId: "${productId}", quantity: 5) { availableStock } }`,
      async check(data, before) {
        expect((data as { restock: { availableStock: number } }).restock.availableStock).toBe(before.availableStock + 5);
        expect((await guarded()).availableStock).toBe(before.availableStock + 5);
      },
    },
    {
      name: 'adjustStock',
      query: () => `mutation { adjustStock(productId: "${productId}", delta: -1, reason: "stocktake") { availableStock } }`,
      async check(data, before) {
        expect((data as { adjustStock: { availableStock: number } }).adjustStock.availableStock).toBe(before.availableStock - 1);
        expect((await guarded()).availableStock).toBe(before.availableStock - 1);
      },
    },
    {
      name: 'createStockLocation',
      query: () => 'mutation { createStockLocation(input: {code: "BY-ADMIN", name: "n", priority: 7}) { code priority } }',
      async check(data) {
        expect((data as { createStockLocation: unknown }).createStockLocation).toEqual({ code: 'BY-ADMIN', priority: 7 });
        const read = await as('bob').inventory.data<{ stockLocations: { code: string }[] }>('{ stockLocations { code } }');
        expect(read.stockLocations.map((l) => l.code)).toContain('BY-ADMIN');
      },
    },
    {
      name: 'transferStock',
      query: () =>
        `mutation { transferStock(productId: "${productId}", fromLocation: "MAIN", toLocation: "AUTH-EAST", quantity: 2) { availableStock } }`,
      async check(data, before) {
        expect((data as { transferStock: { availableStock: number } }).transferStock.availableStock).toBe(before.availableStock);
        const read = await as('admin').inventory.data<{ product: { stockLevels: { location: { code: string }; available: number }[] } }>(
          `{ product(id: "${productId}") { stockLevels { location { code } available } } }`,
        );
        expect(read.product.stockLevels.find((l) => l.location.code === 'AUTH-EAST')?.available).toBe(2);
      },
    },
    {
      name: 'deadLetters',
      parks: true,
      query: () => '{ deadLetters(queue: "order.created.inventory") { id reason body } }',
      check(data, { parked }) {
        const listed = (data as { deadLetters: DeadLetter[] }).deadLetters.find((m) => m.id === parked.id);
        expect(listed?.body).toBe(parked.body);
        expect(listed?.reason).toMatch(/^body is not JSON/);
        return Promise.resolve();
      },
    },
    {
      name: 'replayDeadLetters',
      parks: true,
      query: ({ parked }) => `mutation { replayDeadLetters(queue: "order.created.inventory", ids: ["${parked.id}"]) }`,
      async check(data, before) {
        expect((data as { replayDeadLetters: number }).replayDeadLetters).toBe(1);
        // Back on its queue, consumed again and, still not JSON, parked again.
        await eventually(parkedCount, (n) => n === before.parkedCount + 1);
      },
    },
  ])('refuses $name in the Inventory Service to a customer (FORBIDDEN) and allows it to an admin', async ({ parks, query, check }) => {
    const parked = parks ? await parkMalformed() : { id: '', body: '' };
    const before = { availableStock: (await guarded()).availableStock, parked, parkedCount: await parkedCount() };
    expect(await codeOf(as('alice').inventory, query(before))).toBe('FORBIDDEN');
    const res = await as('admin').inventory.request(query(before));
    expect(res.errors).toBeUndefined();
    await check(res.data, before);
  });

  it.each([
    ['fulfillOrder', 'mutation { fulfillOrder(id: "ORD-1") { id } }'],
    ['deadLetters', '{ deadLetters(queue: "stock.orders") { id } }'],
    ['replayDeadLetters', 'mutation { replayDeadLetters(queue: "stock.orders", all: true) }'],
  ])('refuses %s in the Order Service to a customer (FORBIDDEN)', async (_name, query) => {
    expect(await codeOf(as('alice').orders, query)).toBe('FORBIDDEN');
    expect(await codeOf(as('admin').orders, query)).not.toBe('FORBIDDEN');
  });

  it('lets a customer browse the catalog', async () => {
    const data = await as('bob').inventory.data<{ product: { sku: string } }>(`{ product(id: "${productId}") { sku } }`);
    expect(data.product.sku).toBe('AUTH-1');
  });

  it('does not mark its answers as given without authentication', async () => {
    const res = await fetch(`http://127.0.0.1:${orders.port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await signToken(SECRET, { sub: 'ops', role: 'admin' })}` },
      body: '{"query":"{ __typename }"}',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get(AUTH_NOTICE_HEADER)).toBeNull();
  });

  it('keeps each customer to its own orders: create, read, list, cancel, follow', async () => {
    const res = await createOrder(as('alice').orders, 'alice');
    const id = res.data?.createOrder.id as string;
    expect(id).toMatch(/^ORD-/);

    expect(
      await codeOf(as('bob').orders, 'mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }', {
        input: { customerId: 'alice', items: [{ productId: String(productId), quantity: 1 }] },
      }),
    ).toBe('FORBIDDEN');
    expect((await as('bob').orders.data<{ order: unknown }>(`{ order(id: "${id}") { id } }`)).order).toBeNull();
    expect(await codeOf(as('bob').orders, '{ orders(customerId: "alice") { totalCount } }')).toBe('FORBIDDEN');
    expect((await as('bob').orders.data<{ orders: { totalCount: number } }>('{ orders { totalCount } }')).orders.totalCount).toBe(0);

    expect((await as('alice').orders.data<{ order: { id: string } }>(`{ order(id: "${id}") { id } }`)).order.id).toBe(id);
    const mine = await as('alice').orders.data<{ orders: { nodes: { id: string }[] } }>('{ orders { nodes { id } } }');
    expect(mine.orders.nodes.map((o) => o.id)).toEqual([id]);
    const all = await as('admin').orders.data<{ orders: { totalCount: number } }>('{ orders { totalCount } }');
    expect(all.orders.totalCount).toBeGreaterThanOrEqual(1);

    // A customer may follow its own orders over SSE, with its token.
    const token = await signToken(SECRET, { sub: 'alice', role: 'customer' });
    const sub = await sseSubscribe(
      `http://127.0.0.1:${orders.port}/graphql`,
      'subscription { customerOrderStatusChanged(customerId: "alice") { id status } }',
      {},
      { authorization: `Bearer ${token}` },
    );
    try {
      const cancelled = await as('alice').orders.data<{ cancelOrder: { status: string } }>(
        `mutation { cancelOrder(id: "${id}") { status } }`,
      );
      expect(cancelled.cancelOrder.status).toBe('CANCELLED');
      await sub.waitFor((events) =>
        events.some((e) => (e as { customerOrderStatusChanged: { status: string } }).customerOrderStatusChanged.status === 'CANCELLED'),
      );
    } finally {
      sub.close();
    }
  });

  it('lists to a customer the refunds asked for its own orders only, and every one to an admin', async () => {
    const id = (await createOrder(as('alice').orders, 'alice')).data?.createOrder.id as string;
    // Money the order cannot keep (it has no total): asked back.
    const paymentId = `refund-${randomUUID()}`;
    const paid = await as('admin').orders.data<{ recordPayment: { outcome: string } }>(
      'mutation($input: RecordPaymentInput!) { recordPayment(input: $input) { outcome } }',
      { input: { orderId: id, paymentId, amountCents: 500, currency: 'EUR' } },
    );
    expect(paid.recordPayment.outcome).toBe('REFUND_REQUESTED');
    const refunds = async (who: 'alice' | 'bob' | 'admin') =>
      (await as(who).orders.data<{ refundRequests: { paymentId: string }[] }>('{ refundRequests { paymentId } }')).refundRequests.map(
        (p) => p.paymentId,
      );
    expect(await refunds('alice')).toContain(paymentId);
    expect(await refunds('bob')).toEqual([]);
    expect(await refunds('admin')).toContain(paymentId);
  });

  it("answers for another customer's order exactly as for one that does not exist, on every path", async () => {
    const id = (await createOrder(as('alice').orders, 'alice')).data?.createOrder.id as string;
    const missing = `ORD-${randomUUID()}`;
    const operations = [
      'query($id: ID!) { order(id: $id) { id status } }',
      'query($id: ID!) { orders(ids: [$id]) { totalCount nodes { id } } }',
      'mutation($id: ID!) { cancelOrder(id: $id, reason: "mine now") { id status } }',
      'mutation($id: ID!) { fulfillOrder(id: $id) { id status } }',
      'subscription($id: ID!) { orderStatusChanged(id: $id) { id status } }',
    ];
    const bobToken = await signToken(SECRET, { sub: 'bob', role: 'customer' });
    // The whole answer, HTTP status and body, with the order id asked for written as ORDER.
    const answer = async (query: string, orderId: string) => {
      const res = await as('bob').orders.request(query, { id: orderId });
      return JSON.stringify(res).replaceAll(orderId, 'ORDER');
    };
    const sseAnswer = async (query: string, orderId: string) => {
      const res = await fetch(`http://127.0.0.1:${orders.port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${bobToken}` },
        body: JSON.stringify({ query, variables: { id: orderId } }),
      });
      return `${res.status} ${(await res.text()).replaceAll(orderId, 'ORDER')}`;
    };
    // Before and after alice cancels it: the status must not show through either.
    for (const status of ['PENDING', 'CANCELLED']) {
      if (status === 'CANCELLED') await as('alice').orders.data(`mutation { cancelOrder(id: "${id}") { id } }`);
      for (const query of operations) expect(await answer(query, id), `${query} (${status})`).toBe(await answer(query, missing));
      const subscription = operations.at(-1) as string;
      expect(await sseAnswer(subscription, id), `SSE (${status})`).toBe(await sseAnswer(subscription, missing));
    }
    expect(await codeOf(as('bob').orders, operations[2] as string, { id })).toBe('NOT_FOUND');
    // A subscription is served only over SSE (asked for as JSON it is refused before it runs, the same for any id).
    expect(await sseAnswer(operations[4] as string, id)).toMatch(/^200 [^]*"code":"NOT_FOUND"/);
    const mine = await as('alice').orders.data<{ order: { status: string } }>(`{ order(id: "${id}") { status } }`);
    expect(mine.order.status).toBe('CANCELLED');
  });

  describe("a payments token (a payment provider's callback)", () => {
    const paymentsToken = () => signToken(SECRET, { sub: 'psp-webhook', role: 'payments' });
    let order: { id: string; totalCents: number };
    let pricedId: string;

    beforeAll(async () => {
      pricedId = (
        await as('admin').inventory.data<{ createProduct: { id: string } }>(
          'mutation { createProduct(input: {sku: "AUTH-PAY-1", name: "Paid for", priceCents: 1500, initialStock: 10}) { id } }',
        )
      ).createProduct.id;
      const { createOrder: created } = await as('admin').orders.data<{ createOrder: { id: string } }>(
        'mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }',
        { input: { customerId: 'alice', items: [{ productId: pricedId, quantity: 2 }] } },
      );
      const confirmed = await eventually(
        () =>
          as('admin').orders.data<{ order: { status: string; totalCents: number } }>(
            `{ order(id: "${created.id}") { status totalCents } }`,
          ),
        (r) => r.order.status === 'CONFIRMED',
      );
      order = { id: created.id, totalCents: confirmed.order.totalCents };
    });

    it('records a payment, and reads the order it pays for by id', async () => {
      const record = `mutation { recordPayment(input: {orderId: "${order.id}", paymentId: "psp-1", amountCents: ${order.totalCents}, currency: "EUR"}) { paymentId outcome } }`;
      const paid = await as('payments').orders.data<{ recordPayment: { outcome: string } }>(record);
      expect(paid.recordPayment).toEqual({ paymentId: 'psp-1', outcome: 'PAID' });
      const { order: read } = await as('payments').orders.data<{ order: unknown }>(
        `{ order(id: "${order.id}") { id customerId status totalCents payments { paymentId outcome } } }`,
      );
      expect(read).toEqual({
        id: order.id,
        customerId: 'alice',
        status: 'PAID',
        totalCents: order.totalCents,
        payments: [{ paymentId: 'psp-1', outcome: 'PAID' }],
      });
    });

    /** What an admin reads of everything a refused request could have changed. */
    const snapshot = async () => ({
      orders: await as('admin').orders.data(
        `{ order(id: "${order.id}") { status reason payments { paymentId outcome } }
           all: orders { totalCount } alices: orders(customerId: "alice") { totalCount } psp: orders(customerId: "psp-webhook") { totalCount } }`,
      ),
      inventory: await as('admin').inventory.data(
        `{ product(id: "${pricedId}") { sku name priceCents availableStock reservedStock soldStock movements { totalCount } } products { totalCount } }`,
      ),
    });
    const sse = async (port: number, query: string, variables: Record<string, unknown> = {}) => {
      const res = await fetch(`http://127.0.0.1:${port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${await paymentsToken()}` },
        body: JSON.stringify({ query, variables }),
        // A subscription let through stays open: the read then fails instead of the test hanging.
        signal: AbortSignal.timeout(10_000),
      });
      return res.text();
    };

    it.each<{ name: string; service: 'orders' | 'inventory'; query: () => string; subscription?: boolean }>([
      {
        name: 'createOrder for a customer',
        service: 'orders',
        query: () => `mutation { createOrder(input: {customerId: "alice", items: [{productId: "${pricedId}", quantity: 1}]}) { id } }`,
      },
      {
        name: 'createOrder for its own sub',
        service: 'orders',
        query: () =>
          `mutation { createOrder(input: {customerId: "psp-webhook", items: [{productId: "${pricedId}", quantity: 1}]}) { id } }`,
      },
      { name: 'orders', service: 'orders', query: () => '{ orders { totalCount nodes { id } } }' },
      { name: 'orders by id', service: 'orders', query: () => `{ orders(ids: ["${order.id}"]) { nodes { id } } }` },
      { name: 'orders of a customer', service: 'orders', query: () => '{ orders(customerId: "alice") { totalCount } }' },
      { name: 'recentOrders', service: 'orders', query: () => '{ recentOrders { id } }' },
      { name: 'orderCounts', service: 'orders', query: () => '{ orderCounts { status count } }' },
      { name: 'expiredOrderCount', service: 'orders', query: () => '{ expiredOrderCount }' },
      {
        name: 'cancelOrder',
        service: 'orders',
        query: () => `mutation { cancelOrder(id: "${order.id}", reason: "refund me") { status } }`,
      },
      { name: 'fulfillOrder', service: 'orders', query: () => `mutation { fulfillOrder(id: "${order.id}") { status } }` },
      {
        name: 'reconcilePendingOrders',
        service: 'orders',
        query: () => 'mutation { reconcilePendingOrders(olderThanSeconds: 0) { republished } }',
      },
      { name: 'deadLetters', service: 'orders', query: () => '{ deadLetters(queue: "stock.orders") { id } }' },
      { name: 'replayDeadLetters', service: 'orders', query: () => 'mutation { replayDeadLetters(queue: "stock.orders", all: true) }' },
      { name: 'orderStatusChanges', service: 'orders', subscription: true, query: () => 'subscription { orderStatusChanges { id } }' },
      {
        name: 'orderStatusChanged',
        service: 'orders',
        subscription: true,
        query: () => `subscription { orderStatusChanged(id: "${order.id}") { id status } }`,
      },
      {
        name: 'customerOrderStatusChanged',
        service: 'orders',
        subscription: true,
        query: () => 'subscription { customerOrderStatusChanged(customerId: "alice") { id } }',
      },
      { name: 'product', service: 'inventory', query: () => `{ product(id: "${pricedId}") { name } }` },
      { name: 'products', service: 'inventory', query: () => '{ products { nodes { name } } }' },
      { name: 'stockMovements', service: 'inventory', query: () => `{ stockMovements(productId: "${pricedId}") { nodes { orderId } } }` },
      {
        name: '_entities',
        service: 'inventory',
        query: () => `{ _entities(representations: [{__typename: "Product", id: "${pricedId}"}]) { ... on Product { name } } }`,
      },
      {
        name: 'createProduct',
        service: 'inventory',
        query: () => 'mutation { createProduct(input: {sku: "BY-PSP", name: "n", initialStock: 1}) { id } }',
      },
      {
        name: 'updateProduct',
        service: 'inventory',
        query: () => `mutation { updateProduct(id: "${pricedId}", input: {priceCents: 1}) { id } }`,
      },
      { name: 'restock', service: 'inventory', query: () => `mutation { restock(productId: "${pricedId}", quantity: 5) { id } }` },
      {
        name: 'adjustStock',
        service: 'inventory',
        query: () => `mutation { adjustStock(productId: "${pricedId}", delta: -1, reason: "psp") { id } }`,
      },
      { name: 'deadLetters', service: 'inventory', query: () => '{ deadLetters(queue: "order.created.inventory") { id } }' },
      {
        name: 'replayDeadLetters',
        service: 'inventory',
        query: () => 'mutation { replayDeadLetters(queue: "order.created.inventory", all: true) }',
      },
    ])('refuses $name in the $service service (FORBIDDEN), and nothing changes', async ({ service, query, subscription }) => {
      const before = await snapshot();
      if (subscription) {
        const port = service === 'orders' ? orders.port : inventory.port;
        expect(await sse(port, query())).toMatch(/"code":"FORBIDDEN"/);
      } else {
        const res = await as('payments')[service].request(query());
        expect(res.errors?.[0]?.extensions?.code, JSON.stringify(res)).toBe('FORBIDDEN');
      }
      expect(await snapshot()).toEqual(before);
    });
  });

  it('limits how fast one customer creates orders (RATE_LIMITED), and not admins', async () => {
    const results = [];
    for (let i = 0; i < 6; i += 1) results.push(await createOrder(as('bob').orders, 'bob'));
    const codes = results.map((r) => r.errors?.[0]?.extensions?.code ?? 'OK');
    expect(codes.slice(0, 3)).toEqual(['OK', 'OK', 'OK']);
    expect(codes).toContain('RATE_LIMITED');
    const limited = results.find((r) => r.errors?.[0]?.extensions?.code === 'RATE_LIMITED');
    expect(limited?.errors?.[0]?.extensions?.retryAfterMs).toBeGreaterThan(0);
    for (let i = 0; i < 6; i += 1) expect((await createOrder(as('admin').orders, 'carol')).errors).toBeUndefined();
  });

  it('says in /ready that tokens are checked', async () => {
    const ready = await eventually(
      () => fetch(`http://127.0.0.1:${orders.port}/ready`).then((r) => r.json() as Promise<{ auth: string }>),
      (body) => body.auth !== undefined,
    );
    expect(ready.auth).toBe('jwt');
  });
});

describe.skipIf(servicesUnavailable)('starting without authentication', () => {
  it('refuses to start unless authentication is configured or explicitly switched off, and says so when it is off', async () => {
    const db = await createTestDatabase('auth_start');
    const env = { DATABASE_URL: db.url, AMQP_URL: inject('amqpUrl'), PORT: '0', HOST: '127.0.0.1' };
    try {
      await expect(startOrdersService(loadOrdersConfig(env), logger)).rejects.toThrow(/authentication is not configured/);
      await expect(startOrdersService(loadOrdersConfig({ ...env, AUTH_JWT_SECRET: 'too-short' }), logger)).rejects.toThrow(
        /at least 32 characters/,
      );
      // What a .env copied from an older .env.example holds.
      const placeholder = 'change-me-to-a-long-random-secret-of-32-chars-or-more';
      await expect(startOrdersService(loadOrdersConfig({ ...env, AUTH_JWT_SECRET: placeholder }), logger)).rejects.toThrow(
        /AUTH_JWT_SECRET: is an example value.*openssl rand -base64 48/,
      );
      const lines: Record<string, unknown>[] = [];
      const open = await startOrdersService(loadOrdersConfig({ ...env, AUTH_DISABLED: 'true' }), capturingLogger('orders', lines));
      try {
        const ready = (await (await fetch(`http://127.0.0.1:${open.port}/ready`)).json()) as { auth: string };
        expect(ready.auth).toMatch(/DISABLED/);
        // A token is not checked, garbage or not: each answer says so, and the first request that brings one is warned of, once.
        const ask = (authorization?: string) =>
          fetch(`http://127.0.0.1:${open.port}/graphql`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
            body: '{"query":"{ recentOrders { id } }"}',
          });
        for (const authorization of [undefined, 'Bearer garbage', 'Bearer garbage', 'Bearer other-garbage']) {
          const res = await ask(authorization);
          expect(res.status, authorization).toBe(200);
          expect(res.headers.get(AUTH_NOTICE_HEADER), authorization).toBe('disabled');
          expect(await res.json(), authorization).toEqual({ data: { recentOrders: [] } });
        }
        const warnings = lines.filter((l) => /brought credentials .* authentication is off/.test(String(l.msg)));
        expect(warnings).toHaveLength(1);
        expect(warnings[0]?.level).toBe(40);
      } finally {
        await open.close();
      }
    } finally {
      await db.drop();
    }
  });
});
