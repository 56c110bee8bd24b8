import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OrderCreated, OutgoingMessage, StockReserved } from '@stockflow/contracts';
import { AppError, systemClock } from '@stockflow/platform';
import { createPostgresDatabase, type Database } from '@stockflow/db';
import { eventually } from '@stockflow/testing';
import { applyOrderCreatedBatch, type Effects } from '../src/db/reservations.ts';
import { servicesUnavailable, startInventory, type InventoryHarness } from './harness.ts';

/**
 * OrderCreated batches applied straight to the real database, so that what one batch holds, and
 * which transactions overlap, is certain (a consumer batches whatever has arrived). Each
 * "instance" is a pool of its own; the outbox writer records what a transaction committed.
 */
describe.skipIf(servicesUnavailable)('deciding an order once', () => {
  let h: InventoryHarness;
  const instances: Record<'a' | 'b', Database> = {} as Record<'a' | 'b', Database>;
  let observer: Database;
  const sent: OutgoingMessage[] = [];
  const effects: Effects = {
    clock: systemClock,
    outbox: {
      enqueue: (tx, messages) => {
        tx.afterCommit(() => sent.push(...messages));
        return Promise.resolve();
      },
    },
  };

  beforeAll(async () => {
    h = await startInventory();
    for (const name of ['a', 'b'] as const) {
      instances[name] = createPostgresDatabase({ url: h.database.url, poolSize: 1, applicationName: `inventory-${name}` });
    }
    observer = createPostgresDatabase({ url: h.database.url, poolSize: 2, applicationName: 'decisions-test' });
  });
  afterAll(async () => {
    await Promise.all([instances.a?.close(), instances.b?.close(), observer?.close()]);
    await h?.close();
  });

  const orderCreated = (orderId: string, productId: number, quantity: number): OrderCreated => ({
    event: 'OrderCreated',
    order_id: orderId,
    items: [{ product_id: productId, quantity }],
  });
  const decide = (db: Database, events: OrderCreated[]) => db.transaction((tx) => applyOrderCreatedBatch(tx, events, effects));
  /** An answer as the contract defines it (an event without a trace context starts a new trace each time). */
  const answer = ({ routingKey, messageId, body }: OutgoingMessage) => ({ routingKey, messageId, body });
  /** What the inventory recorded for an order: its decisions, held lines and ledger rows. */
  const recorded = async (orderId: string) => {
    const count = async (table: string) =>
      (await observer.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE order_id = $1`, [orderId])).rows[0]?.n;
    return { decisions: await count('order_decisions'), reservations: await count('reservations'), ledger: await count('stock_movements') };
  };

  it('decides an order two instances take at once only once: the later one rolls back with CONFLICT, and its retry answers the same', async () => {
    sent.length = 0;
    const productId = await h.createProduct('DECIDED-ONCE', 10);
    const order = orderCreated('ORD-TWO-INSTANCES', productId, 3);
    // A third transaction holds the product row, so both instances look the order up (and find it
    // undecided) before either can decide it; they then take the row one after the other.
    let commit = () => undefined as void;
    const committing = new Promise<void>((resolve) => (commit = resolve));
    let holding = () => undefined as void;
    const held = new Promise<void>((resolve) => (holding = resolve));
    const holder = observer.transaction(async (tx) => {
      await tx.query('SELECT 1 FROM products WHERE id = $1 FOR UPDATE', [productId]);
      holding();
      await committing;
    });
    await held;
    const decisions = [decide(instances.a, [order]), decide(instances.b, [order])].map((p) =>
      p.then(
        () => 'decided',
        (error: unknown) => error,
      ),
    );
    await eventually(
      async () =>
        (
          await observer.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity
             WHERE datname = current_database() AND application_name LIKE 'inventory-_' AND wait_event_type = 'Lock'`,
          )
        ).rows[0]?.n,
      (waiting) => waiting === 2,
    );
    commit();
    await holder;
    const outcomes = await Promise.all(decisions);

    expect(outcomes.filter((o) => o === 'decided')).toHaveLength(1);
    const loser = outcomes.find((o) => o !== 'decided');
    expect(loser).toBeInstanceOf(AppError);
    expect((loser as AppError).code).toBe('CONFLICT');
    expect(sent.map((m) => [m.routingKey, (m.body as { order_id: string }).order_id])).toEqual([['stock.reserved', order.order_id]]);
    expect(await h.stock(productId)).toEqual({ availableStock: 7, reservedStock: 3 });
    expect(await recorded(order.order_id)).toEqual({ decisions: 1, reservations: 1, ledger: 1 });

    // The loser's message comes back from its retry queue: answered with the stored answer, nothing moved.
    const loserInstance = outcomes[0] === 'decided' ? instances.b : instances.a;
    await decide(loserInstance, [order]);
    expect(sent.map(answer)).toEqual([answer(sent[0] as OutgoingMessage), answer(sent[0] as OutgoingMessage)]);
    expect(await h.stock(productId)).toEqual({ availableStock: 7, reservedStock: 3 });
    expect(await recorded(order.order_id)).toEqual({ decisions: 1, reservations: 1, ledger: 1 });
  });

  it('reserves from a location a restock stocks for the first time while the order waits for the product, not backordered', async () => {
    sent.length = 0;
    const productId = await h.createProduct('FIRST-AT-NEW-PLACE', 0);
    await h.gql.data(`mutation { updateProduct(id: "${productId}", input: {backorderLimit: 5}) { id } }`);
    await h.gql.data('mutation { createStockLocation(input: {code: "NEW-PLACE", name: "Stocked during the lookup"}) { id } }');
    // What a restock at a location the product has no level at does, held open: the order's
    // lookup takes its snapshot before the new level commits, then waits for the product's lock.
    let commit = () => undefined as void;
    const committing = new Promise<void>((resolve) => (commit = resolve));
    let holding = () => undefined as void;
    const held = new Promise<void>((resolve) => (holding = resolve));
    const restock = observer.transaction(async (tx) => {
      await tx.query('SELECT 1 FROM products WHERE id = $1 FOR UPDATE', [productId]);
      await tx.query(
        `INSERT INTO stock_levels (product_id, location_id, available)
         SELECT $1, id, 3 FROM stock_locations WHERE code = 'NEW-PLACE'`,
        [productId],
      );
      await tx.query('UPDATE products SET available = available + 3 WHERE id = $1', [productId]);
      holding();
      await committing;
    });
    await held;
    const deciding = decide(instances.a, [orderCreated('ORD-RACED-A-RESTOCK', productId, 2)]);
    await eventually(
      async () =>
        (
          await observer.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = 'inventory-a' AND wait_event_type = 'Lock'`,
          )
        ).rows[0]?.n,
      (waiting) => waiting === 1,
    );
    commit();
    await restock;
    await deciding;

    expect(sent.map((m) => (m.body as StockReserved).items)).toEqual([
      [
        {
          product_id: productId,
          quantity: 2,
          unit_price_cents: 999,
          allocations: [{ location_code: 'NEW-PLACE', quantity: 2 }],
          backordered_quantity: 0,
        },
      ],
    ]);
    const levels = await observer.query(
      `SELECT l.code, s.available, s.reserved FROM stock_levels s JOIN stock_locations l ON l.id = s.location_id
       WHERE s.product_id = $1 AND s.available + s.reserved > 0`,
      [productId],
    );
    expect(levels.rows).toEqual([{ code: 'NEW-PLACE', available: 1, reserved: 2 }]);
  });

  it('decides an OrderCreated that comes twice within one batch once, and answers both with the same answer', async () => {
    sent.length = 0;
    const productId = await h.createProduct('TWICE-IN-A-BATCH', 10);
    const twice = orderCreated('ORD-TWICE-IN-A-BATCH', productId, 4);
    await decide(instances.a, [twice, orderCreated('ORD-BESIDE-IT', productId, 1), twice]);

    const answers = sent.filter((m) => (m.body as { order_id: string }).order_id === twice.order_id).map(answer);
    expect(answers).toHaveLength(2);
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[0]).toMatchObject({ routingKey: 'stock.reserved', body: { items: twice.items } });
    expect(sent).toHaveLength(3);
    // 4 units held once, beside the other order's 1.
    expect(await h.stock(productId)).toEqual({ availableStock: 5, reservedStock: 5 });
    expect(await recorded(twice.order_id)).toEqual({ decisions: 1, reservations: 1, ledger: 1 });
  });

  // The held lines, allocations and ledger rows have no foreign keys (migration 0003): the
  // reservation's statement checks that it moved every product and level it wrote rows for. A row
  // it does not move stands for one that is not there (which the locks taken before make
  // impossible today): a trigger skips its update.
  it.each(['stock_levels', 'products'])(
    'writes nothing for a batch whose %s row its statement did not move, and fails it',
    async (table) => {
      sent.length = 0;
      const orderId = `ORD-NOT-MOVED-${table}`;
      const productId = await h.createProduct(`NOT-MOVED-${table}`, 10);
      const column = table === 'products' ? 'id' : 'product_id';
      await observer.exec(`CREATE FUNCTION skip_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
         CREATE TRIGGER skip_update BEFORE UPDATE ON ${table} FOR EACH ROW WHEN (OLD.${column} = ${productId})
           EXECUTE FUNCTION skip_update();`);
      try {
        await expect(decide(instances.a, [orderCreated(orderId, productId, 2)])).rejects.toThrow(
          'a reservation did not move a product or stock level its rows name; nothing was written',
        );
      } finally {
        await observer.exec(`DROP TRIGGER skip_update ON ${table}; DROP FUNCTION skip_update();`);
      }
      expect(sent).toEqual([]);
      expect(await recorded(orderId)).toEqual({ decisions: 0, reservations: 0, ledger: 0 });
      expect(await h.stock(productId)).toEqual({ availableStock: 10, reservedStock: 0 });

      // Moved again, the same order is reserved.
      await decide(instances.a, [orderCreated(orderId, productId, 2)]);
      expect(await recorded(orderId)).toEqual({ decisions: 1, reservations: 1, ledger: 1 });
    },
  );
});
