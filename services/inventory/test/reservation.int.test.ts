import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEAD_LETTER_REASON_HEADER, EXCHANGES, queues, ROUTING_KEYS } from '@stockflow/contracts';
import { createPostgresDatabase } from '@stockflow/db';
import { eventually } from '@stockflow/testing';
import { servicesUnavailable, startInventory, type InventoryHarness } from './harness.ts';

const orderCreated = (orderId: string, items: { product_id: number; quantity: number }[]) => ({
  event: 'OrderCreated',
  order_id: orderId,
  items,
});

describe.skipIf(servicesUnavailable)('reservation on the real PostgreSQL and RabbitMQ', () => {
  let h: InventoryHarness;

  beforeAll(async () => {
    h = await startInventory();
  });
  afterAll(async () => h?.close());

  const waitForAnswers = (orderId: string, n: number) => h.answersFor(orderId, n);
  const stock = (id: number) => h.stock(id);

  it('reserves once when the same OrderCreated is delivered twice, and answers both times alike', async () => {
    const productId = await h.createProduct('IDEMP-1', 10);
    const message = orderCreated('ORD-TWICE', [{ product_id: productId, quantity: 4 }]);
    await h.amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCreated, message);
    await waitForAnswers('ORD-TWICE', 1);
    await h.amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCreated, message);
    const [first, second] = await waitForAnswers('ORD-TWICE', 2);
    expect(second?.raw).toBe(first?.raw);
    expect(first?.routingKey, first?.raw).toBe('stock.reserved');
    expect(await stock(productId)).toEqual({ availableStock: 6, reservedStock: 4 });
  });

  it('decides a resent order the same way even when stock changed in between', async () => {
    const productId = await h.createProduct('IDEMP-2', 1);
    const message = orderCreated('ORD-RESENT', [{ product_id: productId, quantity: 1 }]);
    await h.amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCreated, message);
    await waitForAnswers('ORD-RESENT', 1);
    // Stock is now 0: deciding again would reject. The decision already made stands.
    await h.amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCreated, message);
    const list = await waitForAnswers('ORD-RESENT', 2);
    expect(list.map((m) => m.routingKey)).toEqual(['stock.reserved', 'stock.reserved']);
  });

  it('sums lines naming the same product before checking stock', async () => {
    const productId = await h.createProduct('DUP-LINES', 3);
    await h.amqp.publish(
      EXCHANGES.orders,
      ROUTING_KEYS.orderCreated,
      orderCreated('ORD-DUP-SHORT', [
        { product_id: productId, quantity: 2 },
        { product_id: productId, quantity: 2 },
      ]),
    );
    const [rejected] = await waitForAnswers('ORD-DUP-SHORT', 1);
    expect(rejected?.routingKey).toBe('stock.rejected');
    expect((rejected?.json as { reason: string }).reason).toBe(`Insufficient stock: product ${productId} (requested 4, available 3)`);
    expect(await stock(productId)).toEqual({ availableStock: 3, reservedStock: 0 });

    await h.amqp.publish(
      EXCHANGES.orders,
      ROUTING_KEYS.orderCreated,
      orderCreated('ORD-DUP-OK', [
        { product_id: productId, quantity: 1 },
        { product_id: productId, quantity: 2 },
      ]),
    );
    const [reserved] = await waitForAnswers('ORD-DUP-OK', 1);
    expect(reserved?.routingKey).toBe('stock.reserved');
    expect(await stock(productId)).toEqual({ availableStock: 0, reservedStock: 3 });
  });

  it('records each reservation in the product ledger with the order id', async () => {
    const productId = await h.createProduct('LEDGER-1', 5);
    await h.amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCreated, orderCreated('ORD-LEDGER', [{ product_id: productId, quantity: 2 }]));
    await waitForAnswers('ORD-LEDGER', 1);
    const data = await h.gql.data<{ stockMovements: { totalCount: number; nodes: Record<string, unknown>[] } }>(
      `{ stockMovements(productId: "${productId}") { totalCount nodes { kind quantity availableChange reservedChange availableAfter reservedAfter orderId } } }`,
    );
    expect(data.stockMovements.totalCount).toBe(2);
    expect(data.stockMovements.nodes).toEqual([
      { kind: 'INITIAL', quantity: 5, availableChange: 5, reservedChange: 0, availableAfter: 5, reservedAfter: 0, orderId: null },
      {
        kind: 'RESERVATION',
        quantity: 2,
        availableChange: -2,
        reservedChange: 2,
        availableAfter: 3,
        reservedAfter: 2,
        orderId: 'ORD-LEDGER',
      },
    ]);
  });

  /** Another transaction holding a product's row lock (having set `available`, if given) until the returned function commits it. */
  async function holdProductLock(productId: number, setAvailable?: number) {
    const other = createPostgresDatabase({ url: h.database.url, poolSize: 1, applicationName: 'lock-holder' });
    let commit = () => undefined as void;
    const committing = new Promise<void>((resolve) => (commit = resolve));
    let holding = () => undefined as void;
    const held = new Promise<void>((resolve) => (holding = resolve));
    const transaction = other.transaction(async (tx) => {
      await (setAvailable === undefined
        ? tx.query('SELECT 1 FROM products WHERE id = $1 FOR UPDATE', [productId])
        : tx.query(
            'WITH level AS (UPDATE stock_levels SET available = $2 WHERE product_id = $1) UPDATE products SET available = $2 WHERE id = $1',
            [productId, setAvailable],
          ));
      holding();
      await committing;
    });
    await held;
    return async () => {
      commit();
      await transaction;
      await other.close();
    };
  }

  it('rejects orders for a sold-out product without waiting for that product row lock', async () => {
    const productId = await h.createProduct('SOLD-OUT', 0);
    const release = await holdProductLock(productId);
    try {
      await h.amqp.publish(
        EXCHANGES.orders,
        ROUTING_KEYS.orderCreated,
        orderCreated('ORD-SOLD-OUT', [{ product_id: productId, quantity: 1 }]),
      );
      const [answer] = await waitForAnswers('ORD-SOLD-OUT', 1);
      expect(answer?.routingKey).toBe('stock.rejected');
      expect((answer?.json as { reason: string }).reason).toBe(`Insufficient stock: product ${productId} (requested 1, available 0)`);
    } finally {
      await release();
    }
  });

  it('waits for the lock of a product that still has stock, and decides on what is left once it is released', async () => {
    const productId = await h.createProduct('CONTENDED', 5);
    // A concurrent writer takes 3 of the 5 and has not committed yet.
    const release = await holdProductLock(productId, 2);
    await h.amqp.publish(
      EXCHANGES.orders,
      ROUTING_KEYS.orderCreated,
      orderCreated('ORD-CONTENDED', [{ product_id: productId, quantity: 3 }]),
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(h.answers.filter((m) => (m.json as { order_id?: string }).order_id === 'ORD-CONTENDED')).toEqual([]);
    await release();
    const [answer] = await waitForAnswers('ORD-CONTENDED', 1);
    expect(answer?.routingKey).toBe('stock.rejected');
    expect((answer?.json as { reason: string }).reason).toBe(`Insufficient stock: product ${productId} (requested 3, available 2)`);
    expect(await stock(productId)).toEqual({ availableStock: 2, reservedStock: 0 });
  });

  it('parks malformed and wrong-schema messages in the DLQ with the reason, and keeps consuming', async () => {
    const productId = await h.createProduct('DLQ-NEXT', 5);
    const bad = [
      'this is not json {',
      '{"event": "OrderCreated", "order_id": "ORD-BAD-1", "items": []}',
      '{"event": "OrderCreated", "order_id": "ORD-BAD-2", "items": [{"product_id": 1, "quantity": -2}]}',
      '{"event": "OrderCreated", "order_id": "", "items": [{"product_id": 1, "quantity": 1}]}',
      '{"event": "OrderShipped", "order_id": "ORD-BAD-3", "items": [{"product_id": 1, "quantity": 1}]}',
      '{"event": "OrderCreated", "order_id": "ORD-BAD-4", "items": [{"product_id": "1", "quantity": 1}]}',
      `{"event": "OrderCreated", "order_id": "${'x'.repeat(101)}", "items": [{"product_id": 1, "quantity": 1}]}`,
      '[1, 2, 3]',
    ];
    for (const body of bad) await h.amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCreated, body);
    await h.amqp.publish(
      EXCHANGES.orders,
      ROUTING_KEYS.orderCreated,
      orderCreated('ORD-AFTER-BAD', [{ product_id: productId, quantity: 1 }]),
    );

    const [after] = await waitForAnswers('ORD-AFTER-BAD', 1);
    expect(after?.routingKey).toBe('stock.reserved');

    const parked = await eventually(
      () => h.amqp.drainQueue(queues.orderCreatedInventory.deadLetterQueue),
      () => true,
    );
    const more = parked.length < bad.length ? await h.amqp.drainQueue(queues.orderCreatedInventory.deadLetterQueue) : [];
    const all = [...parked, ...more];
    // The client library decodes JSON bodies on arrival, so a parked JSON body is the same JSON
    // value re-encoded (whitespace may differ); a body that is not JSON is parked byte for byte.
    const canonical = (raw: string) => {
      try {
        return JSON.stringify(JSON.parse(raw));
      } catch {
        return raw;
      }
    };
    expect(all.map((m) => canonical(m.raw)).sort()).toEqual(bad.map(canonical).sort());
    const reasonOf = (raw: string) => String(all.find((m) => canonical(m.raw) === canonical(raw))?.headers[DEAD_LETTER_REASON_HEADER]);
    expect(reasonOf(bad[0] as string)).toMatch(/^body is not JSON/);
    expect(reasonOf(bad[1] as string)).toMatch(/items: items must not be empty/);
    expect(reasonOf(bad[2] as string)).toMatch(/items\.0\.quantity: quantity must be positive/);
    expect(reasonOf(bad[4] as string)).toMatch(/event/);
    expect(reasonOf(bad[6] as string)).toMatch(/order_id must be at most 100 characters/);
    // Nothing else was touched by the bad messages.
    expect(h.answers.some((m) => String((m.json as { order_id?: string }).order_id).startsWith('ORD-BAD'))).toBe(false);
  });
});
