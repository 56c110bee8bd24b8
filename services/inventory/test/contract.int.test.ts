import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXCHANGES, ROUTING_KEYS, StockRejected, StockReserved } from '@stockflow/contracts';
import type { ReceivedMessage } from '@stockflow/testing';
import { servicesUnavailable, startInventory, type InventoryHarness } from './harness.ts';

describe.skipIf(servicesUnavailable)('wire contract with other teams (raw AMQP)', () => {
  let h: InventoryHarness;

  beforeAll(async () => {
    h = await startInventory();
  });
  afterAll(async () => h?.close());

  const answerFor = async (orderId: string) => (await h.answersFor(orderId))[0] as ReceivedMessage;

  it('answers the documented OrderCreated, with no extra fields, with exactly the documented StockReserved, each line priced', async () => {
    const productId = await h.createProduct('CONTRACT-1', 10);
    const raw = `{"event": "OrderCreated", "order_id": "ORD-12345", "items": [{"product_id": ${productId}, "quantity": 2}]}`;
    await h.amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCreated, raw);

    const answer = await answerFor('ORD-12345');
    expect(answer.exchange).toBe('inventory');
    expect(answer.routingKey).toBe('stock.reserved');
    expect(answer.contentType).toBe('application/json');
    expect(answer.durable).toBe(true);
    const body = answer.json as Record<string, unknown>;
    expect({ event: body.event, order_id: body.order_id, items: body.items }).toEqual({
      event: 'StockReserved',
      order_id: 'ORD-12345',
      // The seed's fields, the product's price at reservation (the harness prices at 999), where
      // the units are held and how many are backordered.
      items: [
        {
          product_id: productId,
          quantity: 2,
          unit_price_cents: 999,
          allocations: [{ location_code: 'MAIN', quantity: 2 }],
          backordered_quantity: 0,
        },
      ],
    });
    // Only the extras the contract allows a producer to add.
    expect(Object.keys(body).sort()).toEqual(['event', 'event_id', 'items', 'occurred_at', 'order_id']);
    expect(new Date(body.occurred_at as string).toISOString()).toBe(body.occurred_at);
  });

  it('rejects short stock with "Insufficient stock" naming each short line', async () => {
    const a = await h.createProduct('CONTRACT-SHORT-A', 1);
    const b = await h.createProduct('CONTRACT-SHORT-B', 0);
    const c = await h.createProduct('CONTRACT-SHORT-C', 100);
    await h.amqp.publish(EXCHANGES.orders, 'order.created', {
      event: 'OrderCreated',
      order_id: 'ORD-SHORT',
      items: [
        { product_id: a, quantity: 3 },
        { product_id: b, quantity: 1 },
        { product_id: c, quantity: 1 },
      ],
    });
    const answer = await answerFor('ORD-SHORT');
    expect(answer.routingKey).toBe('stock.rejected');
    const body = StockRejected.parse(answer.json);
    expect(body.event).toBe('StockRejected');
    expect(body.reason).toBe(`Insufficient stock: product ${a} (requested 3, available 1), product ${b} (requested 1, available 0)`);
    expect(body.lines).toEqual([
      { product_id: a, requested: 3, available: 1, problem: 'INSUFFICIENT_STOCK' },
      { product_id: b, requested: 1, available: 0, problem: 'INSUFFICIENT_STOCK' },
    ]);
  });

  it('rejects an unknown product with a reason naming it, not as insufficient stock', async () => {
    const known = await h.createProduct('CONTRACT-KNOWN', 5);
    await h.amqp.publish(EXCHANGES.orders, 'order.created', {
      event: 'OrderCreated',
      order_id: 'ORD-UNKNOWN',
      items: [
        { product_id: known, quantity: 1 },
        { product_id: 999_999, quantity: 1 },
      ],
    });
    const answer = await answerFor('ORD-UNKNOWN');
    expect(answer.routingKey).toBe('stock.rejected');
    expect((answer.json as { reason: string }).reason).toBe('Unknown product: 999999');
    // All or nothing: the known line was not reserved either.
    expect(await h.stock(known)).toEqual({ availableStock: 5, reservedStock: 0 });
  });

  it('ignores unknown extra fields in OrderCreated', async () => {
    const productId = await h.createProduct('CONTRACT-EXTRA', 3);
    await h.amqp.publish(EXCHANGES.orders, 'order.created', {
      event: 'OrderCreated',
      order_id: 'ORD-EXTRA',
      items: [{ product_id: productId, quantity: 1, gift_wrap: true }],
      channel: 'web',
      event_id: 'e-1',
    });
    const answer = await answerFor('ORD-EXTRA');
    expect(answer.routingKey).toBe('stock.reserved');
    expect((answer.json as { items: unknown }).items).toEqual([
      {
        product_id: productId,
        quantity: 1,
        unit_price_cents: 999,
        allocations: [{ location_code: 'MAIN', quantity: 1 }],
        backordered_quantity: 0,
      },
    ]);
  });

  it('prices each line at the price of the moment it is reserved, and leaves a line of a product without a price unpriced', async () => {
    const priced = await h.createProduct('CONTRACT-PRICE', 10);
    await h.gql.data(`mutation { updateProduct(id: "${priced}", input: {priceCents: 1250}) { id } }`);
    const unpriced = await h.createProduct('CONTRACT-NO-PRICE', 10);
    await h.gql.data(`mutation { updateProduct(id: "${unpriced}", input: {priceCents: null}) { id } }`);
    await h.amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCreated, {
      event: 'OrderCreated',
      order_id: 'ORD-PRICED',
      items: [
        { product_id: priced, quantity: 2 },
        { product_id: unpriced, quantity: 1 },
      ],
    });
    const answer = await answerFor('ORD-PRICED');
    expect(StockReserved.parse(answer.json).items.map(({ product_id, unit_price_cents }) => ({ product_id, unit_price_cents }))).toEqual([
      { product_id: priced, unit_price_cents: 1250 },
      { product_id: unpriced, unit_price_cents: undefined },
    ]);
    expect(Object.keys((answer.json as { items: object[] }).items[1] as object)).not.toContain('unit_price_cents');
  });
});
