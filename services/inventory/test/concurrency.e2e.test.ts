import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { EXCHANGES, ROUTING_KEYS } from '@stockflow/contracts';
import {
  createTestDatabase,
  eventually,
  graphqlClient,
  rawAmqp,
  startServiceProcess,
  type ServiceProcess,
  type TestDatabase,
} from '@stockflow/testing';
import { purgeQueues, servicesUnavailable } from './harness.ts';

const ORDERS = 300;

describe.skipIf(servicesUnavailable)('three inventory processes consuming one queue', () => {
  let database: TestDatabase;
  let amqp: Awaited<ReturnType<typeof rawAmqp>>;
  const processes: ServiceProcess[] = [];
  let sql: pg.Client | undefined;

  beforeAll(async () => {
    database = await createTestDatabase('inventory_concurrency');
    amqp = await rawAmqp(inject('amqpUrl'));
    await purgeQueues(amqp);
    const env = {
      DATABASE_URL: database.url,
      AMQP_URL: inject('amqpUrl'),
      PORT: '0',
      HOST: '127.0.0.1',
      // Small batches and prefetch, and one priority for all (deliveries dealt round-robin rather
      // than the overflow of one), so the three processes interleave on the hot row.
      CONSUMER_PREFETCH: '10',
      CONSUMER_BATCH_SIZE: '5',
      CONSUMER_PRIORITY: '0',
      OUTBOX_POLL_MS: '100',
      AUTH_DISABLED: 'true',
    };
    processes.push(...(await Promise.all([1, 2, 3].map(() => startServiceProcess('inventory', env)))));
  });

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await sql?.end();
    await amqp?.close();
    await database?.drop();
  });

  it('never reserves more than the stock and answers every order exactly once', async () => {
    const gql = graphqlClient(`http://127.0.0.1:${processes[0]?.port}/graphql`);
    const create = async (sku: string, initialStock: number) =>
      Number(
        (
          await gql.data<{ createProduct: { id: string } }>(
            `mutation { createProduct(input: {sku: "${sku}", name: "${sku}", initialStock: ${initialStock}}) { id } }`,
          )
        ).createProduct.id,
      );
    const hot = await create('HOT', 20);
    const cold = await create('COLD', 50);

    const answers = await amqp.listen(EXCHANGES.inventory, 'stock.*');
    const coldQuantity = (i: number) => (i % 3) + 1;
    await Promise.all(
      Array.from({ length: ORDERS }, (_, i) => {
        const items = [{ product_id: hot, quantity: 1 }];
        if (i % 3 === 0) items.push({ product_id: cold, quantity: coldQuantity(i) });
        return amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCreated, { event: 'OrderCreated', order_id: `C-${i}`, items });
      }),
    );
    await answers.waitFor(ORDERS, 60_000);
    // Anything beyond ORDERS would be a double answer; give it a moment to show up.
    await new Promise((r) => setTimeout(r, 500));

    const byOrder = new Map<string, string[]>();
    for (const m of answers.received) {
      const id = (m.json as { order_id: string }).order_id;
      byOrder.set(id, [...(byOrder.get(id) ?? []), m.routingKey]);
    }
    expect(answers.received).toHaveLength(ORDERS);
    expect(byOrder.size).toBe(ORDERS);

    const reserved = answers.received
      .filter((m) => m.routingKey === 'stock.reserved')
      .map((m) => m.json as { items: { product_id: number; quantity: number }[] });
    const unitsOf = (productId: number) =>
      reserved.flatMap((r) => r.items).reduce((sum, line) => sum + (line.product_id === productId ? line.quantity : 0), 0);
    expect(unitsOf(hot)).toBe(20);

    const products = await gql.data<{ products: { nodes: { id: string; availableStock: number; reservedStock: number }[] } }>(
      `{ products(ids: ["${hot}", "${cold}"]) { nodes { id availableStock reservedStock } } }`,
    );
    const [hotRow, coldRow] = products.products.nodes;
    expect(hotRow).toEqual({ id: String(hot), availableStock: 0, reservedStock: 20 });
    expect(coldRow?.reservedStock).toBe(unitsOf(cold));
    expect((coldRow?.availableStock ?? -1) + (coldRow?.reservedStock ?? 0)).toBe(50);

    // No process hit an error on the way (a deadlock or a CHECK violation would log at level 50).
    expect(processes.map((p) => p.output()).filter((log) => /"level":50/.test(log))).toEqual([]);
  });

  it('keeps every location whole and backorders within their limit while orders, cancellations, sales, transfers, adjustments and restocks race', async () => {
    const gql = graphqlClient(`http://127.0.0.1:${processes[1]?.port}/graphql`);
    await gql.data('mutation { createStockLocation(input: {code: "SECOND", name: "Second", priority: 50}) { id } }');
    const create = async (sku: string, main: number, second: number, backorderLimit: number) => {
      const id = (
        await gql.data<{ createProduct: { id: string } }>(
          `mutation { createProduct(input: {sku: "${sku}", name: "${sku}", initialStock: ${main}, backorderLimit: ${backorderLimit}}) { id } }`,
        )
      ).createProduct.id;
      await gql.data(`mutation { restock(productId: "${id}", quantity: ${second}, locationCode: "SECOND") { id } }`);
      return Number(id);
    };
    const received = { A: { MAIN: 10, SECOND: 5 }, B: { MAIN: 6, SECOND: 6 }, C: { MAIN: 90, SECOND: 90 } };
    const limits = { A: 40, B: 4, C: 0 };
    const a = await create('HOT-LOC-A', received.A.MAIN, received.A.SECOND, limits.A);
    const b = await create('HOT-LOC-B', received.B.MAIN, received.B.SECOND, limits.B);
    // Demand for A and B leaves nothing available to move (while an order waits for a product, none
    // of its units stays on hand anywhere, so no transfer can fill a backorder). C keeps units on
    // hand at both locations whatever the race (more at each than all the orders naming it want,
    // and than moves take out), so its transfers and removals succeed while its reserved units are
    // sold from under them.
    const c = await create('WARM-LOC-C', received.C.MAIN, received.C.SECOND, limits.C);
    const keyOf = (id: number) => (id === a ? 'A' : id === b ? 'B' : 'C');

    const answers = await amqp.listen(EXCHANGES.inventory, 'stock.*');
    const orderItems = (i: number) => [
      { product_id: a, quantity: (i % 2) + 1 },
      ...(i % 3 === 0 ? [{ product_id: b, quantity: 1 }] : []),
      ...(i % 4 === 0 ? [{ product_id: c, quantity: 1 }] : []),
    ];
    const place = (from: number, to: number) =>
      Promise.all(
        Array.from({ length: to - from }, (_, k) =>
          amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCreated, {
            event: 'OrderCreated',
            order_id: `L-${from + k}`,
            items: orderItems(from + k),
          }),
        ),
      );
    const decided = () => answers.received.filter((m) => m.routingKey === 'stock.reserved' || m.routingKey === 'stock.rejected');
    await place(0, 200);
    await eventually(
      () => Promise.resolve(decided().length),
      (n) => n >= 200,
      60_000,
    );

    const restocks: [number, number, 'MAIN' | 'SECOND'][] = [
      [a, 3, 'MAIN'],
      [a, 4, 'SECOND'],
      [b, 2, 'SECOND'],
      [a, 2, 'MAIN'],
    ];
    const transfers: [number, 'MAIN' | 'SECOND', 'MAIN' | 'SECOND', number][] = [
      [c, 'MAIN', 'SECOND', 3],
      [c, 'SECOND', 'MAIN', 2],
      [c, 'MAIN', 'SECOND', 4],
      [a, 'SECOND', 'MAIN', 1],
      [b, 'MAIN', 'SECOND', 1],
    ];
    const adjustments: [number, number, 'MAIN' | 'SECOND'][] = [
      [c, 3, 'MAIN'],
      [c, -2, 'SECOND'],
      [a, 2, 'SECOND'],
      [a, -1, 'MAIN'],
      [b, -1, 'SECOND'],
    ];

    // A second wave races cancellations of reserved orders (backordered ones among them), sales,
    // transfers and adjustments at both locations, and stock arriving at both.
    type Reserved = {
      order_id: string;
      items: {
        product_id: number;
        quantity: number;
        backordered_quantity?: number;
        allocations?: { location_code: string; quantity: number }[];
      }[];
    };
    const reservedFirst = decided()
      .filter((m) => m.routingKey === 'stock.reserved')
      .map((m) => m.json as Reserved);
    // Only orders holding every unit on hand are sold: a sale gives up a line's backordered units, so
    // what an order still waiting for stock sells depends on whether its fill won the race.
    const fulfilled = reservedFirst
      .filter((r) => r.items.every((line) => (line.backordered_quantity ?? 0) === 0))
      .slice(0, 5)
      .map((r) => r.order_id);
    expect(fulfilled.length).toBeGreaterThan(0);
    // A cancellation of an order holding A's units must hand them to an order waiting for A. It
    // finds one whatever the race if the orders waiting now outnumber the units that can arrive
    // for A and that all the cancellations give up: every other order is cancelled within that
    // budget, the first one holding A on hand among them.
    const unitsOfA = (r: Reserved) => r.items.filter((l) => l.product_id === a).reduce((sum, l) => sum + l.quantity, 0);
    const heldOfA = (r: Reserved) =>
      r.items.filter((l) => l.product_id === a).reduce((sum, l) => sum + l.quantity - (l.backordered_quantity ?? 0), 0);
    const waitingForA = (await gql.data<{ product: { backorderedStock: number } }>(`{ product(id: "${a}") { backorderedStock } }`)).product
      .backorderedStock;
    const arrivingForA = [...restocks, ...adjustments].filter(([id, n]) => id === a && n > 0).reduce((sum, [, n]) => sum + n, 0);
    let budget = waitingForA - arrivingForA - 1;
    const candidates = reservedFirst.filter((r) => !fulfilled.includes(r.order_id));
    const holding = candidates.find((r) => heldOfA(r) > 0);
    const cancelled: string[] = [];
    for (const r of [...(holding ? [holding] : []), ...candidates.filter((r, k) => k % 2 === 0 && r !== holding)]) {
      if (unitsOfA(r) > budget) continue;
      budget -= unitsOfA(r);
      cancelled.push(r.order_id);
    }
    expect(holding && cancelled.includes(holding.order_id), 'an order holding A on hand is cancelled').toBe(true);
    expect(
      reservedFirst.some((r) => cancelled.includes(r.order_id) && heldOfA(r) < unitsOfA(r)),
      'a backordered order is cancelled',
    ).toBe(true);
    // A transfer or removal may find too few units available by the time it runs; only what the
    // service accepted moved.
    const refusedForStock = (id: number, errors: { message: string }[] | undefined) => {
      if (!errors?.length) return false;
      expect(id, `C keeps units on hand: ${JSON.stringify(errors)}`).not.toBe(c);
      expect(errors.map((e) => e.message).filter((m) => !/^cannot (move|remove) \d+ units: only \d+ are available/.test(m))).toEqual([]);
      return true;
    };
    await Promise.all([
      place(200, 300),
      ...cancelled.map((order_id) => amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCancelled, { event: 'OrderCancelled', order_id })),
      ...fulfilled.map((order_id) => amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderFulfilled, { event: 'OrderFulfilled', order_id })),
      ...restocks.map(async ([id, quantity, location]) => {
        await gql.data(`mutation { restock(productId: "${id}", quantity: ${quantity}, locationCode: "${location}") { id } }`);
        received[keyOf(id)][location] += quantity;
      }),
      ...transfers.map(async ([id, from, to, quantity]) => {
        const res = await gql.request(
          `mutation { transferStock(productId: "${id}", fromLocation: "${from}", toLocation: "${to}", quantity: ${quantity}) { id } }`,
        );
        if (refusedForStock(id, res.errors)) return;
        received[keyOf(id)][from] -= quantity;
        received[keyOf(id)][to] += quantity;
      }),
      ...adjustments.map(async ([id, delta, location]) => {
        const res = await gql.request(
          `mutation { adjustStock(productId: "${id}", delta: ${delta}, reason: "stocktake", locationCode: "${location}") { id } }`,
        );
        if (refusedForStock(id, res.errors)) return;
        received[keyOf(id)][location] += delta;
      }),
    ]);
    await eventually(
      () => Promise.resolve([decided().length, answers.received.filter((m) => m.routingKey === 'stock.released').length]),
      ([d, r]) => d === 300 && r === cancelled.length,
      60_000,
    );
    const unitsOf = (orderIds: Iterable<string>, id: number) =>
      [...orderIds]
        .flatMap((orderId) => orderItems(Number(orderId.slice(2))))
        .filter((l) => l.product_id === id)
        .reduce((sum, l) => sum + l.quantity, 0);
    // A sale has no answer on the wire: wait for the products' own counters to show every one.
    await eventually(
      () =>
        gql.data<{ products: { nodes: { soldStock: number }[] } }>(`{ products(ids: ["${a}", "${b}", "${c}"]) { nodes { soldStock } } }`),
      ({ products }) =>
        products.nodes.reduce((sum, p) => sum + p.soldStock, 0) === [a, b, c].reduce((sum, id) => sum + unitsOf(fulfilled, id), 0),
      30_000,
    );
    const db = new pg.Client({ connectionString: database.url });
    sql = db;
    await db.connect();
    // Every BackorderFilled written is published (the outbox keeps only what is not).
    await eventually(
      () => db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox'),
      ({ rows }) => rows[0]?.n === 0,
      30_000,
    );
    await new Promise((r) => setTimeout(r, 500));

    // Every order decided exactly once.
    const outcomes = new Map<string, string[]>();
    for (const m of decided()) {
      const id = (m.json as { order_id: string }).order_id;
      outcomes.set(id, [...(outcomes.get(id) ?? []), m.routingKey]);
    }
    expect(outcomes.size).toBe(300);
    expect([...outcomes.values()].filter((o) => o.length !== 1)).toEqual([]);

    const { products } = await gql.data<{
      products: {
        nodes: {
          id: string;
          reservedStock: number;
          backorderedStock: number;
          stockLevels: { location: { code: 'MAIN' | 'SECOND' }; available: number; reserved: number; sold: number }[];
        }[];
      };
    }>(
      `{ products(ids: ["${a}", "${b}", "${c}"]) { nodes { id reservedStock backorderedStock stockLevels { location { code } available reserved sold } } } }`,
    );
    const stillHeld = new Set(
      decided()
        .filter((m) => m.routingKey === 'stock.reserved')
        .map((m) => (m.json as { order_id: string }).order_id)
        .filter((id) => !cancelled.includes(id) && !fulfilled.includes(id)),
    );
    for (const [key, id] of [
      ['A', a],
      ['B', b],
      ['C', c],
    ] as const) {
      const row = products.nodes.find((p) => p.id === String(id));
      // Per location: nothing below zero, and every unit received (moved in or out, adjusted) is available, reserved or sold.
      for (const level of row?.stockLevels ?? []) {
        expect(level.available, `${key} at ${level.location.code}`).toBeGreaterThanOrEqual(0);
        expect(level.available + level.reserved + level.sold, `${key} at ${level.location.code}`).toBe(received[key][level.location.code]);
      }
      expect(row?.stockLevels).toHaveLength(2);
      expect(row?.backorderedStock).toBeLessThanOrEqual(limits[key]);
      // The locations together sold exactly the units of the fulfilled orders, and hold what the product says is reserved.
      const levels = row?.stockLevels ?? [];
      expect(
        levels.reduce((sum, l) => sum + l.sold, 0),
        `${key} sold`,
      ).toBe(unitsOf(fulfilled, id));
      expect(
        levels.reduce((sum, l) => sum + l.reserved, 0),
        `${key} reserved`,
      ).toBe(row?.reservedStock);
      // What the accepted orders still hold, on hand or backordered, is what the product says is promised.
      expect((row?.reservedStock ?? 0) + (row?.backorderedStock ?? 0), `${key} promised`).toBe(unitsOf(stillHeld, id));
    }

    // Each fill once (a redelivered event keeps its event_id), and only for an order reserved.
    type Filled = { event_id: string; order_id: string; items: { product_id: number; quantity: number; location_code: string }[] };
    const fills = [
      ...new Map(
        answers.received
          .filter((m) => m.routingKey === 'stock.backorder_filled')
          .map((m) => [(m.json as Filled).event_id, m.json as Filled]),
      ).values(),
    ];
    // Demand far above supply: the backorders were used, and stock that arrived filled them.
    expect(fills.length).toBeGreaterThan(0);
    const reservedAll = new Map(
      decided()
        .filter((m) => m.routingKey === 'stock.reserved')
        .map((m) => [(m.json as Reserved).order_id, m.json as Reserved]),
    );
    expect(fills.filter((f) => !reservedAll.has(f.order_id)).map((f) => f.order_id)).toEqual([]);
    // Per order and product, the fills told add up to the units that stopped waiting: what
    // StockReserved backordered less what the order's line still waits for.
    const { rows: lines } = await db.query<{ order_id: string; product_id: number; backordered: number }>(
      'SELECT order_id, product_id, backordered FROM reservations WHERE product_id = ANY($1::int[])',
      [[a, b, c]],
    );
    const stillWaiting = new Map(lines.map((l) => [`${l.order_id}/${l.product_id}`, l.backordered]));
    const filledTold = new Map<string, number>();
    for (const f of fills)
      for (const item of f.items)
        filledTold.set(`${f.order_id}/${item.product_id}`, (filledTold.get(`${f.order_id}/${item.product_id}`) ?? 0) + item.quantity);
    const mismatched = [...reservedAll.values()].flatMap((r) =>
      [...new Set(r.items.map((l) => l.product_id))].flatMap((productId) => {
        const key = `${r.order_id}/${productId}`;
        const backordered = r.items.filter((l) => l.product_id === productId).reduce((sum, l) => sum + (l.backordered_quantity ?? 0), 0);
        const told = filledTold.get(key) ?? 0;
        const left = stillWaiting.get(key);
        return left !== undefined && told === backordered - left ? [] : [{ key, backordered, told, left }];
      }),
    );
    expect(mismatched).toEqual([]);
    // Per location, what is reserved there is what the orders still held were allocated there,
    // when reserved or by a fill since.
    const heldAt = new Map<string, number>();
    const hold = (productId: number, code: string, quantity: number) =>
      heldAt.set(`${productId}@${code}`, (heldAt.get(`${productId}@${code}`) ?? 0) + quantity);
    for (const orderId of stillHeld) {
      for (const line of reservedAll.get(orderId)?.items ?? [])
        for (const at of line.allocations ?? []) hold(line.product_id, at.location_code, at.quantity);
    }
    for (const f of fills.filter((f) => stillHeld.has(f.order_id)))
      for (const item of f.items) hold(item.product_id, item.location_code, item.quantity);
    for (const row of products.nodes)
      for (const level of row.stockLevels)
        expect(level.reserved, `reserved of ${row.id} at ${level.location.code}`).toBe(heldAt.get(`${row.id}@${level.location.code}`) ?? 0);
    // While an order waits for a product, none of its units stays on hand anywhere: every arrival
    // (restock, adjustment, transfer in, units given back) went to the waiting orders first.
    for (const row of products.nodes.filter((p) => p.backorderedStock > 0))
      expect(
        row.stockLevels.map((l) => l.available),
        `available of ${row.id} while orders wait`,
      ).toEqual(row.stockLevels.map(() => 0));
    // A cancellation's units went to a waiting order: a fill written in the transaction that released them, at that location.
    const { rows: releaseFills } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM stock_movements f JOIN stock_movements r
         ON r.xmin::text = f.xmin::text AND r.product_id = f.product_id AND r.location_id = f.location_id
       WHERE f.reason = 'backorder filled' AND r.kind = 'RELEASE' AND f.product_id = $1`,
      [a],
    );
    expect(releaseFills[0]?.n, 'fills of A by a cancellation').toBeGreaterThan(0);
    expect(processes.map((p) => p.output()).filter((log) => /"level":50/.test(log))).toEqual([]);
  });
});
