import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { EXCHANGES, ROUTING_KEYS, queues } from '@stockflow/contracts';
import { createLogger } from '@stockflow/observability';
import type { RunningService } from '@stockflow/runtime';
import { createTestDatabase, eventually, graphqlClient, rawAmqp, sseSubscribe, type TestDatabase } from '@stockflow/testing';
import { loadOrdersConfig } from '../src/config.ts';
import { startOrdersService } from '../src/service.ts';
import { serviceEnv, startInventory } from './services.ts';

const servicesUnavailable = inject('servicesUnavailable');

interface Line {
  productId: string;
  backorderedQuantity: number;
  allocations: { locationCode: string; quantity: number }[];
}

/** An order whose stock is partly backordered, from createOrder to fulfilment, with both services on the real broker and databases. */
describe.skipIf(servicesUnavailable)('orders awaiting backordered stock', () => {
  const amqpUrl = inject('amqpUrl');
  let ordersDb: TestDatabase;
  let inventoryDb: TestDatabase;
  const running: RunningService[] = [];
  let amqp: Awaited<ReturnType<typeof rawAmqp>>;
  let orders: ReturnType<typeof graphqlClient>;
  let inventory: ReturnType<typeof graphqlClient>;

  beforeAll(async () => {
    [ordersDb, inventoryDb] = await Promise.all([
      createTestDatabase('orders_backorders'),
      createTestDatabase('orders_backorders_inventory'),
    ]);
    amqp = await rawAmqp(amqpUrl);
    const started = await startInventory(inventoryDb, amqpUrl);
    running.push(started.service);
    inventory = started.gql;
    // Payments off: a CONFIRMED order may be fulfilled at once, so only its stock stands in the way.
    const service = await startOrdersService(
      loadOrdersConfig({ ...serviceEnv(ordersDb, amqpUrl), PAYMENT_HOLD_SECONDS: '0' }),
      createLogger({ name: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    );
    running.push(service);
    orders = graphqlClient(`http://127.0.0.1:${service.port}/graphql`);
  });
  afterAll(async () => {
    while (running.length > 0) await running.pop()?.close();
    await amqp?.close();
    await ordersDb?.drop();
    await inventoryDb?.drop();
  });

  const order = async (id: string) =>
    (
      await orders.data<{ order: { status: string; awaitingStock: boolean; items: Line[] } }>(
        `{ order(id: "${id}") { status awaitingStock items { productId backorderedQuantity allocations { locationCode quantity } } } }`,
      )
    ).order;
  const place = async (productId: number, quantity: number) => {
    const { createOrder } = await orders.data<{ createOrder: { id: string } }>(
      `mutation { createOrder(input: {customerId: "c", items: [{productId: "${productId}", quantity: ${quantity}}]}) { id } }`,
    );
    await eventually(
      () => order(createOrder.id),
      (o) => o.status === 'CONFIRMED',
    );
    return createOrder.id;
  };
  const restock = (productId: number, quantity: number) =>
    inventory.data(`mutation { restock(productId: "${productId}", quantity: ${quantity}) { id } }`);
  const backordered = async (id: string) => (await order(id)).items.map((l) => l.backorderedQuantity);

  it('confirms an order with backordered units, refuses to fulfil it until they arrive, and applies each BackorderFilled once', async () => {
    const { createProduct } = await inventory.data<{ createProduct: { id: string } }>(
      'mutation { createProduct(input: {sku: "BO-E2E", name: "Backordered", priceCents: 500, initialStock: 1, backorderLimit: 5}) { id } }',
    );
    const productId = Number(createProduct.id);
    const fills = await amqp.listen(EXCHANGES.inventory, ROUTING_KEYS.backorderFilled);

    const first = await place(productId, 3);
    expect(await order(first)).toEqual({
      status: 'CONFIRMED',
      awaitingStock: true,
      items: [{ productId: String(productId), backorderedQuantity: 2, allocations: [{ locationCode: 'MAIN', quantity: 1 }] }],
    });
    const refused = await orders.request(`mutation { fulfillOrder(id: "${first}") { status } }`);
    expect(refused.errors?.[0]?.extensions?.code).toBe('AWAITING_STOCK');

    await restock(productId, 1);
    await eventually(
      () => backordered(first),
      (b) => b[0] === 1,
    );
    const [filled] = await fills.waitFor(1);

    // The same BackorderFilled again (a redelivery): nothing changes. A fill for a second order,
    // published after it, shows the repeat was consumed.
    const second = await place(productId, 1);
    await amqp.publish(EXCHANGES.inventory, ROUTING_KEYS.backorderFilled, filled?.raw ?? '');
    await amqp.publish(EXCHANGES.inventory, ROUTING_KEYS.backorderFilled, {
      event: 'BackorderFilled',
      event_id: 'sentinel-fill',
      order_id: second,
      items: [{ product_id: productId, quantity: 1, location_code: 'MAIN' }],
    });
    await eventually(
      () => backordered(second),
      (b) => b[0] === 0,
    );
    expect(await backordered(first)).toEqual([1]);

    await restock(productId, 1);
    await eventually(
      () => order(first),
      (o) => !o.awaitingStock,
    );
    expect((await order(first)).items[0]?.allocations).toEqual([{ locationCode: 'MAIN', quantity: 3 }]);
    const shipped = await orders.data<{ fulfillOrder: { status: string } }>(`mutation { fulfillOrder(id: "${first}") { status } }`);
    expect(shipped.fulfillOrder.status).toBe('FULFILLED');
  });
});

/**
 * Fills that arrive out of order, with the Order Service alone on the real broker and database:
 * the test publishes what the Inventory Service would, in the order its relays may publish it.
 */
describe.skipIf(servicesUnavailable)('a BackorderFilled out of order', () => {
  const amqpUrl = inject('amqpUrl');
  let ordersDb: TestDatabase;
  let service: RunningService;
  let amqp: Awaited<ReturnType<typeof rawAmqp>>;
  let orders: ReturnType<typeof graphqlClient>;

  beforeAll(async () => {
    ordersDb = await createTestDatabase('orders_early_fills');
    amqp = await rawAmqp(amqpUrl);
    service = await startOrdersService(
      // One batch in flight at a time: what arrives while it runs waits, and forms the next batch together.
      loadOrdersConfig({ ...serviceEnv(ordersDb, amqpUrl), PAYMENT_HOLD_SECONDS: '0', CONSUMER_BATCHES_IN_FLIGHT: '1' }),
      createLogger({ name: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    );
    orders = graphqlClient(`http://127.0.0.1:${service.port}/graphql`);
  });
  afterAll(async () => {
    await service?.close();
    // No Inventory Service took this file's orders: they must not reach one of a later file.
    for (const q of Object.values(queues)) await amqp?.connection.queuePurge(q.queue).catch(() => undefined);
    await amqp?.close();
    await ordersDb?.drop();
  });

  const order = async (id: string) =>
    (
      await orders.data<{ order: { status: string; awaitingStock: boolean; items: Line[] } }>(
        `{ order(id: "${id}") { status awaitingStock items { productId backorderedQuantity allocations { locationCode quantity } } } }`,
      )
    ).order;
  const create = async (productId: number, quantity: number) =>
    (
      await orders.data<{ createOrder: { id: string } }>(
        `mutation { createOrder(input: {customerId: "c", items: [{productId: "${productId}", quantity: ${quantity}}]}) { id } }`,
      )
    ).createOrder.id;
  /** StockReserved for `quantity` units of `productId`: one held at MAIN, the rest backordered. */
  const reserve = (orderId: string, productId: number, quantity: number) =>
    amqp.publish(EXCHANGES.inventory, ROUTING_KEYS.stockReserved, {
      event: 'StockReserved',
      order_id: orderId,
      items: [
        {
          product_id: productId,
          quantity,
          unit_price_cents: 500,
          allocations: [{ location_code: 'MAIN', quantity: 1 }],
          backordered_quantity: quantity - 1,
        },
      ],
    });
  const fill = (eventId: string, orderId: string, productId: number, quantity: number) =>
    amqp.publish(EXCHANGES.inventory, ROUTING_KEYS.backorderFilled, {
      event: 'BackorderFilled',
      event_id: eventId,
      order_id: orderId,
      items: [{ product_id: productId, quantity, location_code: 'EAST' }],
    });
  /** The inbox row of a fill (undefined until it was received), and the items it keeps waiting. */
  const inbox = async (eventId: string) =>
    (await service.db.query<{ waiting: unknown }>('SELECT waiting_items AS waiting FROM backorder_fills WHERE event_id = $1', [eventId]))
      .rows[0];
  const confirmed = (id: string) =>
    eventually(
      () => order(id),
      (o) => o.status === 'CONFIRMED',
    );

  it('keeps a fill that overtook its StockReserved, without failing the answers beside it, and applies it when the order is confirmed', async () => {
    const early = await create(71, 3);
    const beside = await create(72, 2);
    const blocker = await create(70, 1);
    // The fill and the answer beside it must meet in one batch: a batch for `blocker` is held in
    // flight on the order's lock while both are delivered, so they wait together for the next one.
    let unlock: () => void = () => undefined;
    let locked: () => void = () => undefined;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holding = service.db.transaction(async (tx) => {
      await tx.query('SELECT 1 FROM orders WHERE id = $1 FOR UPDATE', [blocker]);
      locked();
      await new Promise<void>((resolve) => (unlock = resolve));
    });
    await isLocked;
    await reserve(blocker, 70, 1);
    await eventually(
      () =>
        service.db.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        ),
      ({ rows }) => (rows[0]?.n ?? 0) > 0,
    );
    await fill('early-fill', early, 71, 1);
    await reserve(beside, 72, 2);
    // Both delivered (none left ready in the queue) while the blocker's batch still waits.
    await eventually(
      () => amqp.connection.queueDeclare({ queue: queues.stockOrders.queue, passive: true }),
      ({ messageCount }) => messageCount === 0,
    );
    unlock();
    await holding;

    expect(await confirmed(beside)).toMatchObject({ awaitingStock: true, items: [{ backorderedQuantity: 1 }] });
    expect(
      await eventually(
        () => inbox('early-fill'),
        (row) => row !== undefined,
      ),
    ).toEqual({ waiting: [{ product_id: 71, quantity: 1, location_code: 'EAST' }] });
    expect((await order(early)).status).toBe('PENDING');
    // One transaction wrote both: the batch holding them was applied whole, not failed and retried one by one.
    const { rows: writers } = await service.db.query<{ xid: string }>(
      `SELECT xmin::text AS xid FROM orders WHERE id = $1 UNION SELECT xmin::text FROM backorder_fills WHERE event_id = 'early-fill'`,
      [beside],
    );
    expect(writers).toHaveLength(1);

    await reserve(early, 71, 3);
    // Confirmed and filled in one transaction: the first read of the confirmed order shows the fill.
    expect(await confirmed(early)).toEqual({
      status: 'CONFIRMED',
      awaitingStock: true,
      items: [
        {
          productId: '71',
          backorderedQuantity: 1,
          allocations: [
            { locationCode: 'MAIN', quantity: 1 },
            { locationCode: 'EAST', quantity: 1 },
          ],
        },
      ],
    });
    expect(await inbox('early-fill')).toEqual({ waiting: null });
  });

  it('records a fill for an order cancelled after its confirmation, and changes nothing of it', async () => {
    const id = await create(73, 3);
    await reserve(id, 73, 3);
    await confirmed(id);
    await orders.data(`mutation { cancelOrder(id: "${id}") { id } }`);
    const before = await order(id);
    expect(before.status).toBe('CANCELLED');

    await fill('late-fill', id, 73, 2);
    expect(
      await eventually(
        () => inbox('late-fill'),
        (row) => row !== undefined,
      ),
    ).toEqual({ waiting: null });
    expect(await order(id)).toEqual(before);
  });

  it('tells a client following the order when its last backordered units arrived, and not the subscribers to status changes', async () => {
    const url = `http://127.0.0.1:${service.port}/graphql`;
    const id = await create(74, 2);
    await reserve(id, 74, 2);
    await confirmed(id);
    const follower = await sseSubscribe<{ orderStatusChanged: { status: string; awaitingStock: boolean } }>(
      url,
      'subscription($id: ID!) { orderStatusChanged(id: $id) { status awaitingStock } }',
      { id },
    );
    const everyOrder = await sseSubscribe<{ orderStatusChanges: { id: string } }>(url, 'subscription { orderStatusChanges { id } }');
    const customers = await sseSubscribe<{ customerOrderStatusChanged: { id: string } }>(
      url,
      'subscription { customerOrderStatusChanged(customerId: "c") { id } }',
    );
    try {
      await follower.waitFor((events) => events.length === 1);
      // A new order shows when the status-change stream listens, and, after the fill, that it was given what came before.
      const listening = await create(75, 1);
      await everyOrder.waitFor((events) => events.some((e) => e.orderStatusChanges.id === listening));
      await customers.waitFor((events) => events.some((e) => e.customerOrderStatusChanged.id === listening));

      await fill('last-units', id, 74, 1);
      await follower.waitFor((events) => events.length === 2);
      const after = await create(75, 1);
      await everyOrder.waitFor((events) => events.some((e) => e.orderStatusChanges.id === after));
      await customers.waitFor((events) => events.some((e) => e.customerOrderStatusChanged.id === after));

      expect(follower.events.map((e) => e.orderStatusChanged)).toEqual([
        { status: 'CONFIRMED', awaitingStock: true },
        { status: 'CONFIRMED', awaitingStock: false },
      ]);
      expect(everyOrder.events.map((e) => e.orderStatusChanges.id)).toEqual([listening, after]);
      expect(customers.events.map((e) => e.customerOrderStatusChanged.id)).toEqual([listening, after]);
    } finally {
      follower.close();
      everyOrder.close();
      customers.close();
    }
  });
});
