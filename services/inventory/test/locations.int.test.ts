import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXCHANGES, MAX_INT32, MAX_STOCK_LOCATIONS, ROUTING_KEYS, StockReserved } from '@stockflow/contracts';
import { createPostgresDatabase } from '@stockflow/db';
import { eventually, type ReceivedMessage } from '@stockflow/testing';
import { servicesUnavailable, startInventory, type InventoryHarness } from './harness.ts';

interface Level {
  location: { code: string };
  available: number;
  reserved: number;
  sold: number;
}

/**
 * Stock at several locations, over the real service: GraphQL for the stock, raw AMQP for the
 * orders and the answers, as the Order Service and other teams see them. EAST and WEST (priority
 * 50) are preferred to MAIN (100), EAST to WEST by its code, and FAR (200) comes last.
 */
describe.skipIf(servicesUnavailable)('stock locations, allocation and backorders', () => {
  let h: InventoryHarness;

  beforeAll(async () => {
    h = await startInventory();
    for (const [code, priority] of [
      ['WEST', 50],
      ['EAST', 50],
      ['FAR', 200],
    ] as const) {
      await h.gql.data('mutation($input: CreateStockLocationInput!) { createStockLocation(input: $input) { id } }', {
        input: { code, name: `Warehouse ${code}`, priority },
      });
    }
  });
  afterAll(async () => h?.close());

  /** A product with `units` per location (MAIN's from its creation, the others restocked) and a backorder limit. */
  const product = async (sku: string, units: Record<string, number>, backorderLimit = 0) => {
    const id = await h.createProduct(sku, units.MAIN ?? 0);
    for (const [code, quantity] of Object.entries(units)) if (code !== 'MAIN' && quantity > 0) await restock(id, quantity, code);
    if (backorderLimit > 0) await h.gql.data(`mutation { updateProduct(id: "${id}", input: {backorderLimit: ${backorderLimit}}) { id } }`);
    return id;
  };
  const restock = (id: number, quantity: number, location: string) =>
    h.gql.data(`mutation { restock(productId: "${id}", quantity: ${quantity}, locationCode: "${location}") { id } }`);
  const stock = async (id: number) =>
    (
      await h.gql.data<{
        product: { availableStock: number; reservedStock: number; soldStock: number; backorderedStock: number; stockLevels: Level[] };
      }>(
        `{ product(id: "${id}") { availableStock reservedStock soldStock backorderedStock
             stockLevels { location { code } available reserved sold } } }`,
      )
    ).product;
  /** Each location's available/reserved/sold, as one string for a readable comparison. */
  const levels = async (id: number) =>
    Object.fromEntries((await stock(id)).stockLevels.map((l) => [l.location.code, `${l.available}/${l.reserved}/${l.sold}`]));
  const order = async (orderId: string, ...lines: [number, number][]) => {
    await h.amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCreated, {
      event: 'OrderCreated',
      order_id: orderId,
      items: lines.map(([product_id, quantity]) => ({ product_id, quantity })),
    });
    return (await h.answersFor(orderId))[0] as ReceivedMessage;
  };
  /** Where each line of a reserved order is held, and how many of its units are backordered. */
  const allocated = (answer: ReceivedMessage) =>
    StockReserved.parse(answer.json).items.map((i) => [
      i.allocations?.map((a) => `${a.location_code}:${a.quantity}`),
      i.backordered_quantity,
    ]);
  const fillsFor = (orderId: string) =>
    h.answers.filter((m) => m.routingKey === ROUTING_KEYS.backorderFilled && (m.json as { order_id: string }).order_id === orderId);
  const cancel = (orderId: string) =>
    h.amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCancelled, { event: 'OrderCancelled', order_id: orderId });

  it('lists MAIN from the start and the new locations in order of allocation preference', async () => {
    const { stockLocations } = await h.gql.data<{ stockLocations: { code: string; priority: number }[] }>(
      '{ stockLocations { code priority } }',
    );
    expect(stockLocations).toEqual([
      { code: 'EAST', priority: 50 },
      { code: 'WEST', priority: 50 },
      { code: 'MAIN', priority: 100 },
      { code: 'FAR', priority: 200 },
    ]);
  });

  it.each([
    ['a lower-case code', '{code: "east-9", name: "x"}', 'BAD_USER_INPUT'],
    ['a code over 32 characters', `{code: "${'A'.repeat(33)}", name: "x"}`, 'BAD_USER_INPUT'],
    ['a code with a space', '{code: "NORTH 1", name: "x"}', 'BAD_USER_INPUT'],
    ['a code taken', '{code: "MAIN", name: "again"}', 'CONFLICT'],
    ['a negative priority', '{code: "NORTH", name: "x", priority: -1}', 'BAD_USER_INPUT'],
  ])('refuses a location with %s with a coded error', async (_label, input, code) => {
    const res = await h.gql.request(`mutation { createStockLocation(input: ${input}) { id } }`);
    expect(res.errors?.[0]?.extensions?.code, JSON.stringify(res)).toBe(code);
  });

  it('allocates an order to the one location that can supply every line, even when a more preferred one has part of it', async () => {
    const a = await product('ALLOC-ONE-A', { EAST: 5, MAIN: 5 });
    const b = await product('ALLOC-ONE-B', { MAIN: 5 });
    const answer = await order('ORD-ONE-PLACE', [a, 2], [b, 1]);
    expect(allocated(answer)).toEqual([
      [['MAIN:2'], 0],
      [['MAIN:1'], 0],
    ]);
    expect(await levels(a)).toEqual({ EAST: '5/0/0', MAIN: '3/2/0' });
  });

  it('takes a whole order from the lowest priority number first, then the lowest code', async () => {
    const id = await product('ALLOC-PRIORITY', { MAIN: 4, WEST: 4, EAST: 4, FAR: 4 });
    const places = [];
    for (const n of [1, 2, 3, 4]) places.push(allocated(await order(`ORD-PRIORITY-${n}`, [id, 4])));
    expect(places).toEqual([[[['EAST:4'], 0]], [[['WEST:4'], 0]], [[['MAIN:4'], 0]], [[['FAR:4'], 0]]]);
  });

  it('splits a line over the locations in order of preference when no location has all of it', async () => {
    const id = await product('ALLOC-SPLIT', { MAIN: 3, WEST: 2, EAST: 1 });
    expect(allocated(await order('ORD-SPLIT', [id, 5]))).toEqual([[['EAST:1', 'WEST:2', 'MAIN:2'], 0]]);
    expect(await levels(id)).toEqual({ EAST: '0/1/0', WEST: '0/2/0', MAIN: '1/2/0' });
    const sums = await stock(id);
    expect([sums.availableStock, sums.reservedStock]).toEqual([1, 5]);
  });

  it('releases a cancelled order to the locations it was held at, and sells a fulfilled one from them, ledger row by location', async () => {
    const id = await product('ALLOC-SETTLE', { MAIN: 3, EAST: 2 });
    await order('ORD-SETTLE-CANCEL', [id, 4]);
    await order('ORD-SETTLE-SHIP', [id, 1]);
    expect(await levels(id)).toEqual({ EAST: '0/2/0', MAIN: '0/3/0' });

    await cancel('ORD-SETTLE-CANCEL');
    await h.answersFor('ORD-SETTLE-CANCEL', 2);
    expect(await levels(id)).toEqual({ EAST: '2/0/0', MAIN: '2/1/0' });

    await h.amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderFulfilled, { event: 'OrderFulfilled', order_id: 'ORD-SETTLE-SHIP' });
    await eventually(
      () => levels(id),
      (l) => l.MAIN === '2/0/1',
    );
    expect(await levels(id)).toEqual({ EAST: '2/0/0', MAIN: '2/0/1' });
    const { stockMovements } = await h.gql.data<{ stockMovements: { nodes: { kind: string; quantity: number; locationCode: string }[] } }>(
      `{ stockMovements(productId: "${id}", kinds: [RESERVATION, RELEASE, SALE]) { nodes { kind quantity locationCode } } }`,
    );
    expect(stockMovements.nodes.map((m) => `${m.kind} ${m.quantity} ${m.locationCode}`).sort()).toEqual([
      'RELEASE 2 EAST',
      'RELEASE 2 MAIN',
      'RESERVATION 1 MAIN',
      'RESERVATION 2 EAST',
      'RESERVATION 2 MAIN',
      'SALE 1 MAIN',
    ]);
  });

  it('transfers available units between locations with a ledger entry on each side, and refuses what it cannot move', async () => {
    const id = await product('TRANSFER', { MAIN: 5 });
    const moved = await h.gql.data<{ transferStock: { availableStock: number } }>(
      `mutation { transferStock(productId: "${id}", fromLocation: "MAIN", toLocation: "FAR", quantity: 3) { availableStock } }`,
    );
    expect(moved.transferStock.availableStock).toBe(5);
    expect(await levels(id)).toEqual({ MAIN: '2/0/0', FAR: '3/0/0' });
    const { stockMovements } = await h.gql.data<{
      stockMovements: { nodes: { quantity: number; availableChange: number; availableAfter: number; locationCode: string }[] };
    }>(`{ stockMovements(productId: "${id}", kinds: [TRANSFER]) { nodes { quantity availableChange availableAfter locationCode } } }`);
    expect(stockMovements.nodes).toEqual([
      { quantity: 3, availableChange: -3, availableAfter: 2, locationCode: 'MAIN' },
      { quantity: 3, availableChange: 3, availableAfter: 5, locationCode: 'FAR' },
    ]);

    const refusal = async (from: string, to: string, quantity: number) =>
      (
        await h.gql.request(
          `mutation { transferStock(productId: "${id}", fromLocation: "${from}", toLocation: "${to}", quantity: ${quantity}) { id } }`,
        )
      ).errors?.[0]?.extensions?.code;
    expect(await refusal('MAIN', 'FAR', 3)).toBe('BAD_USER_INPUT');
    expect(await refusal('MAIN', 'MAIN', 1)).toBe('BAD_USER_INPUT');
    expect(await refusal('EAST', 'MAIN', 1)).toBe('BAD_USER_INPUT');
    expect(await refusal('MAIN', 'NOWHERE', 1)).toBe('NOT_FOUND');
    expect(await levels(id)).toEqual({ MAIN: '2/0/0', FAR: '3/0/0' });
  });

  it('restocks and adjusts at a named location, MAIN when none is named, and refuses an unknown one', async () => {
    const id = await product('LOCATED-RESTOCK', { MAIN: 1 });
    await h.gql.data(`mutation { restock(productId: "${id}", quantity: 2) { id } }`);
    await h.gql.data(`mutation { adjustStock(productId: "${id}", delta: 4, reason: "found", locationCode: "WEST") { id } }`);
    await h.gql.data(`mutation { adjustStock(productId: "${id}", delta: -1, reason: "damaged", locationCode: "WEST") { id } }`);
    expect(await levels(id)).toEqual({ WEST: '3/0/0', MAIN: '3/0/0' });
    const below = await h.gql.request(`mutation { adjustStock(productId: "${id}", delta: -4, reason: "x", locationCode: "WEST") { id } }`);
    expect(below.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const unknown = await h.gql.request(`mutation { restock(productId: "${id}", quantity: 1, locationCode: "NOWHERE") { id } }`);
    expect(unknown.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });

  it("refuses with a coded error an adjustment up that would take the product's sum over locations past the largest storable amount", async () => {
    const id = await product('ADJUST-OVER-MAX', { MAIN: MAX_INT32 - 10 });
    const over = await h.gql.request(
      `mutation { adjustStock(productId: "${id}", delta: 11, reason: "found", locationCode: "WEST") { id } }`,
    );
    expect(over.errors?.[0]?.extensions?.code, JSON.stringify(over)).toBe('BAD_USER_INPUT');
    expect(await levels(id)).toEqual({ MAIN: `${MAX_INT32 - 10}/0/0` });
  });

  it("refuses with a coded error a restock that would take the product's sum over locations past the largest storable amount", async () => {
    const id = await product('RESTOCK-OVER-MAX', { MAIN: MAX_INT32 - 10 });
    const over = await h.gql.request(`mutation { restock(productId: "${id}", quantity: 11, locationCode: "WEST") { id } }`);
    expect(over.errors?.[0]?.extensions?.code, JSON.stringify(over)).toBe('BAD_USER_INPUT');
    expect(await levels(id)).toEqual({ MAIN: `${MAX_INT32 - 10}/0/0` });
  });

  it('backorders a shortfall that fits the backorder limit, and rejects an order beyond what is left of it', async () => {
    const id = await product('BACKORDER-LIMIT', { MAIN: 2 }, 3);
    expect(allocated(await order('ORD-BO-1', [id, 4]))).toEqual([[['MAIN:2'], 2]]);
    const beyond = await order('ORD-BO-2', [id, 2]);
    expect(beyond.routingKey).toBe('stock.rejected');
    expect((beyond.json as { reason: string }).reason).toBe(`Insufficient stock: product ${id} (requested 2, available 0)`);
    expect(allocated(await order('ORD-BO-3', [id, 1]))).toEqual([[[], 1]]);
    const after = await stock(id);
    expect([after.availableStock, after.reservedStock, after.backorderedStock]).toEqual([0, 2, 3]);
    // The limit cannot go below what is promised now.
    const lowered = await h.gql.request(`mutation { updateProduct(id: "${id}", input: {backorderLimit: 2}) { id } }`);
    expect(lowered.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('fills backorders oldest order first across two restocks, from the location that received the units', async () => {
    const id = await product('BACKORDER-FIFO', {}, 5);
    await order('ORD-FIFO-OLD', [id, 3]);
    await order('ORD-FIFO-NEW', [id, 2]);

    await restock(id, 2, 'EAST');
    await eventually(
      () => Promise.resolve(fillsFor('ORD-FIFO-OLD')),
      (fills) => fills.length === 1,
    );
    expect(fillsFor('ORD-FIFO-OLD').map((m) => (m.json as { items: unknown }).items)).toEqual([
      [{ product_id: id, quantity: 2, location_code: 'EAST' }],
    ]);
    expect(fillsFor('ORD-FIFO-NEW')).toEqual([]);

    await restock(id, 2, 'MAIN');
    await eventually(
      () => Promise.resolve(fillsFor('ORD-FIFO-NEW')),
      (fills) => fills.length === 1,
    );
    expect([...fillsFor('ORD-FIFO-OLD'), ...fillsFor('ORD-FIFO-NEW')].map((m) => (m.json as { items: unknown }).items)).toEqual([
      [{ product_id: id, quantity: 2, location_code: 'EAST' }],
      [{ product_id: id, quantity: 1, location_code: 'MAIN' }],
      [{ product_id: id, quantity: 1, location_code: 'MAIN' }],
    ]);
    const after = await stock(id);
    expect([after.availableStock, after.reservedStock, after.backorderedStock]).toEqual([0, 4, 1]);
    expect(await levels(id)).toEqual({ EAST: '0/2/0', MAIN: '0/2/0' });

    // The filled units are held where they arrived: the old order's cancellation gives them back
    // there, and the new order's unit still waiting takes one of them (EAST is preferred to MAIN).
    await cancel('ORD-FIFO-OLD');
    await eventually(
      () => Promise.resolve(fillsFor('ORD-FIFO-NEW')),
      (fills) => fills.length === 2,
    );
    expect((fillsFor('ORD-FIFO-NEW')[1]?.json as { items: unknown }).items).toEqual([
      { product_id: id, quantity: 1, location_code: 'EAST' },
    ]);
    expect(await levels(id)).toEqual({ EAST: '1/1/0', MAIN: '1/1/0' });
  });

  it('gives the units a cancelled backordered order held to the oldest waiting order, and its place in the backorder to a new one', async () => {
    const id = await product('BACKORDER-CANCEL', { MAIN: 1 }, 2);
    await order('ORD-BC-FIRST', [id, 2]);
    await order('ORD-BC-SECOND', [id, 1]);
    expect((await order('ORD-BC-FULL', [id, 1])).routingKey).toBe('stock.rejected');

    await cancel('ORD-BC-FIRST');
    await h.answersFor('ORD-BC-FIRST', 2);
    const [filled] = await eventually(
      () => Promise.resolve(fillsFor('ORD-BC-SECOND')),
      (fills) => fills.length === 1,
    );
    expect((filled?.json as { items: unknown }).items).toEqual([{ product_id: id, quantity: 1, location_code: 'MAIN' }]);
    const after = await stock(id);
    expect([after.availableStock, after.reservedStock, after.backorderedStock]).toEqual([0, 1, 0]);
    expect(await levels(id)).toEqual({ MAIN: '0/1/0' });

    // Its place is free: a newer order may backorder again, and stock arriving fills it.
    expect(allocated(await order('ORD-BC-THIRD', [id, 2]))).toEqual([[[], 2]]);
    await restock(id, 1, 'MAIN');
    await eventually(
      () => Promise.resolve(fillsFor('ORD-BC-THIRD')),
      (fills) => fills.length === 1,
    );
    expect(fillsFor('ORD-BC-FIRST')).toEqual([]);
    expect(fillsFor('ORD-BC-SECOND')).toHaveLength(1);
    expect((await stock(id)).backorderedStock).toBe(1);
  });

  it('hands the units a restock filled an order with to the next waiting order when that order is cancelled, where they are', async () => {
    const id = await product('BACKORDER-FILLED-CANCEL', {}, 3);
    await order('ORD-BFC-OLD', [id, 2]);
    await order('ORD-BFC-NEW', [id, 1]);
    await restock(id, 2, 'EAST');
    await eventually(
      () => Promise.resolve(fillsFor('ORD-BFC-OLD')),
      (fills) => fills.length === 1,
    );

    await cancel('ORD-BFC-OLD');
    const [filled] = await eventually(
      () => Promise.resolve(fillsFor('ORD-BFC-NEW')),
      (fills) => fills.length === 1,
    );
    expect((filled?.json as { items: unknown }).items).toEqual([{ product_id: id, quantity: 1, location_code: 'EAST' }]);
    expect(await levels(id)).toEqual({ EAST: '1/1/0', MAIN: '0/0/0' });
    const after = await stock(id);
    expect([after.availableStock, after.reservedStock, after.backorderedStock]).toEqual([1, 1, 0]);
    const { stockMovements } = await h.gql.data<{ stockMovements: { nodes: { kind: string; quantity: number; orderId: string }[] } }>(
      `{ stockMovements(productId: "${id}", kinds: [RESERVATION, RELEASE]) { nodes { kind quantity orderId } } }`,
    );
    expect(stockMovements.nodes.slice(-2)).toEqual([
      { kind: 'RELEASE', quantity: 2, orderId: 'ORD-BFC-OLD' },
      { kind: 'RESERVATION', quantity: 1, orderId: 'ORD-BFC-NEW' },
    ]);
  });

  it('publishes BackorderFilled exactly as documented, raw, and StockReserved with where its units are', async () => {
    const id = await product('WIRE-BACKORDER', { WEST: 1 }, 1);
    const reserved = await order('ORD-WIRE-BO', [id, 2]);
    const line = (JSON.parse(reserved.raw) as { items: Record<string, unknown>[] }).items[0];
    expect(line).toEqual({
      product_id: id,
      quantity: 2,
      unit_price_cents: 999,
      allocations: [{ location_code: 'WEST', quantity: 1 }],
      backordered_quantity: 1,
    });

    await restock(id, 1, 'FAR');
    const [filled] = await eventually(
      () => Promise.resolve(fillsFor('ORD-WIRE-BO')),
      (fills) => fills.length === 1,
    );
    expect(filled?.exchange).toBe('inventory');
    expect(filled?.routingKey).toBe('stock.backorder_filled');
    expect(filled?.contentType).toBe('application/json');
    expect(filled?.durable).toBe(true);
    // What a consumer decoding the body finds: the documented keys, in the documented order.
    const body = JSON.parse(filled?.raw ?? '') as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(['event', 'event_id', 'occurred_at', 'order_id', 'items']);
    expect(body).toMatchObject({
      event: 'BackorderFilled',
      order_id: 'ORD-WIRE-BO',
      items: [{ product_id: id, quantity: 1, location_code: 'FAR' }],
    });
    expect(Object.keys((body.items as object[])[0] as object)).toEqual(['product_id', 'quantity', 'location_code']);
    expect(new Date(body.occurred_at as string).toISOString()).toBe(body.occurred_at);
    expect(typeof body.event_id).toBe('string');
  });
  // Last: it fills the list of locations up.
  // After every kind of stock write above (reservations split over locations, releases, sales,
  // transfers, restocks, adjustments, backorder fills), and before the locations are filled up to
  // the limit (every small location id would exist then): the held lines, allocations and ledger
  // rows carry no foreign keys (migration 0003), so their writers are checked here.
  it('leaves every held line, allocation and ledger row naming a product, stock level and held line that exist, and each level reserving what its held lines hold', async () => {
    const db = createPostgresDatabase({ url: h.database.url, poolSize: 1, applicationName: 'dangling-rows' });
    try {
      const { rows } = await db.query<{ rows: string; total: number; dangling: number }>(
        `SELECT 'held lines' AS rows, count(*)::int AS total,
                count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.id = r.product_id))::int AS dangling
         FROM reservations r
         UNION ALL
         SELECT 'allocations', count(*)::int,
                count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM stock_levels s WHERE s.product_id = a.product_id AND s.location_id = a.location_id)
                                 OR NOT EXISTS (SELECT 1 FROM reservations r WHERE r.order_id = a.order_id AND r.product_id = a.product_id))::int
         FROM reservation_allocations a
         UNION ALL
         SELECT 'ledger rows', count(*)::int,
                count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM stock_levels s WHERE s.product_id = m.product_id AND s.location_id = m.location_id))::int
         FROM stock_movements m`,
      );
      expect(rows.map((r) => [r.rows, r.dangling])).toEqual([
        ['held lines', 0],
        ['allocations', 0],
        ['ledger rows', 0],
      ]);
      // Each level's reserved units are the held lines' allocations there.
      const { rows: mismatched } = await db.query(
        `SELECT s.product_id, s.location_id, s.reserved, coalesce(sum(a.quantity), 0)::int AS held
         FROM stock_levels s
         LEFT JOIN reservation_allocations a ON a.product_id = s.product_id AND a.location_id = s.location_id
           AND EXISTS (SELECT 1 FROM reservations r WHERE r.order_id = a.order_id AND r.product_id = a.product_id AND r.status = 'HELD')
         GROUP BY s.product_id, s.location_id, s.reserved HAVING s.reserved <> coalesce(sum(a.quantity), 0)`,
      );
      expect(mismatched).toEqual([]);
      // Rows of every kind were written, at several locations: the checks above looked at something.
      const kinds = await db.query<{ kind: string }>('SELECT DISTINCT kind FROM stock_movements ORDER BY kind');
      expect(kinds.rows.map((k) => k.kind)).toEqual(['ADJUSTMENT', 'INITIAL', 'RELEASE', 'RESERVATION', 'RESTOCK', 'SALE', 'TRANSFER']);
      const held = await db.query<{ locations: number; lines: number }>(
        'SELECT count(DISTINCT location_id)::int AS locations, count(*)::int AS lines FROM reservation_allocations',
      );
      expect(held.rows[0]?.locations).toBeGreaterThan(2);
      expect(held.rows[0]?.lines).toBeGreaterThan(10);
    } finally {
      await db.close();
    }
  });

  it(`refuses a location beyond the ${MAX_STOCK_LOCATIONS}th with CONFLICT`, async () => {
    const { stockLocations } = await h.gql.data<{ stockLocations: unknown[] }>('{ stockLocations { code } }');
    for (let n = stockLocations.length; n < MAX_STOCK_LOCATIONS; n += 1) {
      await h.gql.data(`mutation { createStockLocation(input: {code: "SPARE-${n}", name: "Spare"}) { id } }`);
    }
    const beyond = await h.gql.request('mutation { createStockLocation(input: {code: "ONE-TOO-MANY", name: "x"}) { id } }');
    expect(beyond.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    expect((await h.gql.data<{ stockLocations: unknown[] }>('{ stockLocations { code } }')).stockLocations).toHaveLength(
      MAX_STOCK_LOCATIONS,
    );
  });
});
