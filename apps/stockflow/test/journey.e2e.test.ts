import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { queues } from '@stockflow/contracts';
import { metricSum } from '@stockflow/observability';
import type { Transaction } from '@stockflow/db';
import {
  createTestDatabase,
  eventually,
  graphqlClient,
  rawAmqp,
  sseSubscribe,
  type GraphqlClient,
  type TestDatabase,
} from '@stockflow/testing';
import { CANCELLED_BEFORE_RESERVATION } from '@stockflow/inventory';
import { startPlatform, type RunningPlatform } from '../src/platform.ts';
import { embeddedEnv, PLATFORM_TEST_ENV } from './embedded.ts';

const servicesUnavailable = inject('servicesUnavailable');

interface OrderView {
  id: string;
  status: string;
  reason: string | null;
}

const ORDER_FIELDS = 'id status reason customerId items { productId quantity } createdAt updatedAt';

async function purgeAll(amqpUrl: string) {
  const amqp = await rawAmqp(amqpUrl);
  for (const q of Object.values(queues)) {
    await amqp.connection.queuePurge(q.queue).catch(() => undefined);
    await amqp.connection.queuePurge(q.deadLetterQueue).catch(() => undefined);
  }
  await amqp.close();
}

/** The same customer journey, through both GraphQL APIs, in each mode. */
describe.each(['distributed', 'embedded'] as const)('order journey (%s)', (mode) => {
  let platform: RunningPlatform;
  let orders: GraphqlClient;
  let inventory: GraphqlClient;
  const cleanup: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    if (mode === 'distributed' && servicesUnavailable) return;
    const env: Record<string, string> = { ...PLATFORM_TEST_ENV };
    if (mode === 'distributed') {
      const dbs: TestDatabase[] = [await createTestDatabase('journey_inventory'), await createTestDatabase('journey_orders')];
      cleanup.push(() => Promise.all(dbs.map((d) => d.drop())));
      // Outside the embedded mode authentication is required unless switched off (auth.e2e tests it).
      Object.assign(env, {
        AMQP_URL: inject('amqpUrl'),
        INVENTORY_DATABASE_URL: dbs[0]?.url,
        ORDERS_DATABASE_URL: dbs[1]?.url,
        AUTH_DISABLED: 'true',
      });
      await purgeAll(inject('amqpUrl'));
    } else {
      const embedded = await embeddedEnv('embedded');
      cleanup.push(embedded.remove);
      Object.assign(env, embedded.env);
    }
    platform = await startPlatform(env);
    orders = graphqlClient(`http://127.0.0.1:${platform.orders.port}/graphql`);
    inventory = graphqlClient(`http://127.0.0.1:${platform.inventory.port}/graphql`);
  });

  afterAll(async () => {
    await platform?.close();
    for (const c of cleanup.reverse()) await c();
  });

  const skip = mode === 'distributed' && Boolean(servicesUnavailable);

  const product = async (sku: string, initialStock: number) =>
    Number(
      (
        await inventory.data<{ createProduct: { id: string } }>(
          `mutation { createProduct(input: {sku: "${sku}", name: "${sku}", priceCents: 1500, initialStock: ${initialStock}}) { id } }`,
        )
      ).createProduct.id,
    );
  const stock = async (id: number) =>
    (
      await inventory.data<{ product: { availableStock: number; reservedStock: number; soldStock: number } }>(
        `{ product(id: "${id}") { availableStock reservedStock soldStock } }`,
      )
    ).product;
  const createOrder = async (customerId: string, items: { productId: number; quantity: number }[]) =>
    (
      await orders.data<{ createOrder: OrderView }>(
        `mutation($input: CreateOrderInput!) { createOrder(input: $input) { ${ORDER_FIELDS} } }`,
        {
          input: { customerId, items: items.map((i) => ({ productId: String(i.productId), quantity: i.quantity })) },
        },
      )
    ).createOrder;
  const order = async (id: string) => (await orders.data<{ order: OrderView }>(`{ order(id: "${id}") { ${ORDER_FIELDS} } }`)).order;
  const settled = (id: string, status: string) =>
    eventually(
      () => order(id),
      (o) => o.status === status,
    );

  it.skipIf(skip)('answers an order with its products through the gateway it serves as well (one graph)', async () => {
    const lamp = await product(`LAMP-${mode}`, 4);
    const created = await createOrder('graph-customer', [{ productId: lamp, quantity: 3 }]);
    await settled(created.id, 'CONFIRMED');
    const gateway = graphqlClient(`http://127.0.0.1:${platform.gateway.port}/graphql`);
    const { order } = await gateway.data<{ order: { items: unknown[] } }>(
      `{ order(id: "${created.id}") { items { quantity product { name priceCents availableStock } } } }`,
    );
    expect(order.items).toEqual([{ quantity: 3, product: { name: `LAMP-${mode}`, priceCents: 1500, availableStock: 1 } }]);
  });

  it.skipIf(skip)('confirms an order whose stock is there, and the subscription sees each change', async () => {
    const tv = await product(`TV-${mode}`, 5);
    const sub = await sseSubscribe<{ customerOrderStatusChanged: OrderView }>(
      `http://127.0.0.1:${platform.orders.port}/graphql`,
      'subscription { customerOrderStatusChanged(customerId: "sub-customer") { id status } }',
    );
    const created = await createOrder('sub-customer', [{ productId: tv, quantity: 2 }]);
    expect(created.status).toBe('PENDING');
    const confirmed = await settled(created.id, 'CONFIRMED');
    expect(new Date((confirmed as unknown as { updatedAt: string }).updatedAt).getTime()).toBeGreaterThanOrEqual(
      new Date((created as unknown as { createdAt: string }).createdAt).getTime(),
    );
    await sub.waitFor((events) => events.some((e) => e.customerOrderStatusChanged.status === 'CONFIRMED'));
    expect(sub.events.map((e) => e.customerOrderStatusChanged)).toEqual([
      { id: created.id, status: 'PENDING' },
      { id: created.id, status: 'CONFIRMED' },
    ]);
    sub.close();
    expect(await stock(tv)).toEqual({ availableStock: 3, reservedStock: 2, soldStock: 0 });
  });

  it.skipIf(skip)('cancels an order for short stock with the reason, holding nothing', async () => {
    const a = await product(`SHORT-${mode}`, 1);
    const b = await product(`PLENTY-${mode}`, 10);
    const created = await createOrder('c1', [
      { productId: b, quantity: 1 },
      { productId: a, quantity: 2 },
    ]);
    const cancelled = await settled(created.id, 'CANCELLED');
    expect(cancelled.reason).toBe(`Insufficient stock: product ${a} (requested 2, available 1)`);
    expect(await stock(b)).toEqual({ availableStock: 10, reservedStock: 0, soldStock: 0 });
  });

  it.skipIf(skip)('cancels an order naming an unknown product', async () => {
    const created = await createOrder('c1', [{ productId: 987_654, quantity: 1 }]);
    expect((await settled(created.id, 'CANCELLED')).reason).toBe('Unknown product: 987654');
  });

  it.skipIf(skip)('gives the stock back when a confirmed order is cancelled', async () => {
    const p = await product(`CANCEL-${mode}`, 4);
    const created = await createOrder('c2', [{ productId: p, quantity: 3 }]);
    await settled(created.id, 'CONFIRMED');
    expect(await stock(p)).toEqual({ availableStock: 1, reservedStock: 3, soldStock: 0 });
    const cancel = await orders.data<{ cancelOrder: OrderView }>(
      `mutation { cancelOrder(id: "${created.id}", reason: "changed my mind") { ${ORDER_FIELDS} } }`,
    );
    expect(cancel.cancelOrder).toMatchObject({ status: 'CANCELLED', reason: 'changed my mind' });
    await eventually(
      () => stock(p),
      (s) => s.reservedStock === 0,
    );
    expect(await stock(p)).toEqual({ availableStock: 4, reservedStock: 0, soldStock: 0 });
    const again = await orders.request(`mutation { cancelOrder(id: "${created.id}") { id } }`);
    expect(again.errors?.[0]?.extensions?.code).toBe('INVALID_TRANSITION');
  });

  it.skipIf(skip)('holds nothing when the cancellation overtakes the reservation', async () => {
    const p = await product(`RACE-${mode}`, 5);
    const answersDecided = async (event: 'StockReserved' | 'StockRejected') =>
      metricSum(await (await fetch(`http://127.0.0.1:${platform.orders.port}/metrics`)).text(), 'stockflow_messages_consumed_total', {
        queue: 'stock.orders',
        event,
        outcome: 'applied',
      });
    const before = { StockReserved: await answersDecided('StockReserved'), StockRejected: await answersDecided('StockRejected') };

    // While this transaction holds the product's row the inventory cannot decide an order for it
    // (in the embedded mode, PGlite's one connection, it can do nothing at all), so the customer's
    // cancellation comes before any reservation, however fast the inventory is.
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    let holdingWith: (tx: Transaction) => void = () => undefined;
    const held = new Promise<Transaction>((resolve) => (holdingWith = resolve));
    const holding = platform.inventory.db.transaction(async (tx) => {
      await tx.query('SELECT 1 FROM products WHERE id = $1 FOR UPDATE', [p]);
      holdingWith(tx);
      await released;
    });
    const tx = await held;
    let created: OrderView;
    let cancelled: OrderView;
    try {
      created = await createOrder('racer', [{ productId: p, quantity: 3 }]);
      cancelled = (
        await orders.data<{ cancelOrder: OrderView }>(
          `mutation { cancelOrder(id: "${created.id}", reason: "changed my mind") { ${ORDER_FIELDS} } }`,
        )
      ).cancelOrder;
      const recorded = async () =>
        (
          await tx.query<{ outcome: string; reason: string }>('SELECT outcome, reason FROM order_decisions WHERE order_id = $1', [
            created.id,
          ])
        ).rows;
      const moved = await tx.query('SELECT 1 FROM stock_movements WHERE order_id = $1', [created.id]);
      // The overtake: the order was cancelled while nothing was reserved for it.
      expect(cancelled).toMatchObject({ status: 'CANCELLED', reason: 'changed my mind' });
      expect(moved.rows).toEqual([]);
      if (mode === 'distributed') {
        // The cancellation needs no product row: it reaches the inventory and leaves its
        // rejection there while the OrderCreated still waits for the row.
        expect(await eventually(recorded, (rows) => rows.length > 0)).toEqual([
          { outcome: 'REJECTED', reason: CANCELLED_BEFORE_RESERVATION },
        ]);
      } else {
        expect(await recorded()).toEqual([]);
      }
    } finally {
      release();
      await holding;
    }

    // The inventory decides the late OrderCreated, and the Order Service consumes that answer.
    const [decision] = (
      await eventually(
        () => platform.inventory.db.query<{ outcome: string }>('SELECT outcome FROM order_decisions WHERE order_id = $1', [created.id]),
        (r) => r.rows.length > 0,
      )
    ).rows as [{ outcome: string }];
    const answer = decision.outcome === 'RESERVED' ? 'StockReserved' : 'StockRejected';
    if (mode === 'distributed') expect(answer).toBe('StockRejected');
    await eventually(
      () => answersDecided(answer),
      (n) => n === before[answer] + 1,
      20_000,
    );
    // The late answer changed nothing: the order is as the customer's cancellation left it...
    expect(await order(created.id)).toEqual(cancelled);
    // ...and nothing is held for it: a reservation made after all was released.
    await eventually(
      () => stock(p),
      (s) => s.reservedStock === 0,
    );
    expect(await stock(p)).toEqual({ availableStock: 5, reservedStock: 0, soldStock: 0 });
    const ledger = await inventory.data<{ stockMovements: { nodes: { kind: string; quantity: number; orderId: string | null }[] } }>(
      `{ stockMovements(productId: "${p}") { nodes { kind quantity orderId } } }`,
    );
    expect(ledger.stockMovements.nodes.filter((m) => m.orderId === created.id)).toEqual(
      decision.outcome === 'RESERVED'
        ? [
            { kind: 'RESERVATION', quantity: 3, orderId: created.id },
            { kind: 'RELEASE', quantity: 3, orderId: created.id },
          ]
        : [],
    );
  });

  it.skipIf(skip)('fulfils a paid order, not an unpaid one: reserved becomes sold; a cancelled order cannot be fulfilled', async () => {
    const p = await product(`SHIP-${mode}`, 6);
    const created = await createOrder('c3', [{ productId: p, quantity: 2 }]);
    await settled(created.id, 'CONFIRMED');
    const unpaid = await orders.request(`mutation { fulfillOrder(id: "${created.id}") { id } }`);
    expect(unpaid.errors?.[0]?.extensions?.code).toBe('PAYMENT_REQUIRED');
    expect(unpaid.errors?.[0]?.message).toMatch(new RegExp(`^cannot fulfil order ${created.id}: it is not paid yet \\(payment due by `));
    const { order } = await orders.data<{ order: { totalCents: number; currency: string } }>(
      `{ order(id: "${created.id}") { totalCents currency } }`,
    );
    const payment = await orders.data<{ recordPayment: { outcome: string } }>(
      `mutation($input: RecordPaymentInput!) { recordPayment(input: $input) { outcome } }`,
      { input: { orderId: created.id, paymentId: `pay-${created.id}`, amountCents: order.totalCents, currency: order.currency } },
    );
    expect(payment.recordPayment.outcome).toBe('PAID');
    const shipped = await orders.data<{ fulfillOrder: OrderView }>(`mutation { fulfillOrder(id: "${created.id}") { ${ORDER_FIELDS} } }`);
    expect(shipped.fulfillOrder.status).toBe('FULFILLED');
    await eventually(
      () => stock(p),
      (s) => s.soldStock === 2,
    );
    expect(await stock(p)).toEqual({ availableStock: 4, reservedStock: 0, soldStock: 2 });

    const rejected = await createOrder('c3', [{ productId: p, quantity: 100 }]);
    await settled(rejected.id, 'CANCELLED');
    const refused = await orders.request(`mutation { fulfillOrder(id: "${rejected.id}") { id } }`);
    expect(refused.errors?.[0]?.extensions?.code).toBe('INVALID_TRANSITION');
    expect(refused.errors?.[0]?.message).toBe(`cannot fulfil order ${rejected.id}: it is CANCELLED`);
  });
});
