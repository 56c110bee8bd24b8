import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase, type Database } from '@stockflow/db';
import type { OutgoingMessage } from '@stockflow/contracts';
import { applyOrderCancelledBatch, applyOrderFulfilledBatch, CANCELLED_BEFORE_RESERVATION } from '../src/db/releases.ts';
import { applyOrderCreatedBatch, type Effects } from '../src/db/reservations.ts';
import { systemClock } from '@stockflow/platform';
import { servicesUnavailable, startInventory, type InventoryHarness } from './harness.ts';

/**
 * Batches applied straight to the real database, so that what one batch holds is certain (a
 * consumer batches whatever has arrived). The outbox writer only records what would be sent.
 */
describe.skipIf(servicesUnavailable)('releases and sales applied in batches', () => {
  let h: InventoryHarness;
  let db: Database;
  let sent: OutgoingMessage[] = [];
  const effects: Effects = {
    clock: systemClock,
    outbox: {
      enqueue: (_tx, messages) => {
        sent.push(...messages);
        return Promise.resolve();
      },
    },
  };

  beforeAll(async () => {
    h = await startInventory();
    db = createPostgresDatabase({ url: h.database.url, poolSize: 2, applicationName: 'releases-test' });
  });
  afterAll(async () => {
    await db?.close();
    await h?.close();
  });

  const reserve = (orders: [string, number, number][]) =>
    db.transaction((tx) =>
      applyOrderCreatedBatch(
        tx,
        orders.map(([order_id, product_id, quantity]) => ({ event: 'OrderCreated', order_id, items: [{ product_id, quantity }] })),
        effects,
      ),
    );
  const cancel = (...orderIds: string[]) =>
    db.transaction((tx) =>
      applyOrderCancelledBatch(
        tx,
        orderIds.map((order_id) => ({ event: 'OrderCancelled', order_id })),
        effects,
      ),
    );
  const ledger = async (productId: number, kind: string) =>
    (
      await db.query<{ order_id: string; quantity: number; available_after: number; reserved_after: number; sold_after: number }>(
        `SELECT order_id, quantity, available_after, reserved_after, sold_after FROM stock_movements
         WHERE product_id = $1 AND kind = $2 ORDER BY id`,
        [productId, kind],
      )
    ).rows;

  it('releases the orders of one batch on the same product, with a true ledger row for each', async () => {
    const productId = await h.createProduct('BATCH-RELEASE', 10);
    await reserve([
      ['ORD-BR-1', productId, 2],
      ['ORD-BR-2', productId, 3],
      ['ORD-BR-3', productId, 1],
    ]);
    sent = [];
    await cancel('ORD-BR-2', 'ORD-BR-1', 'ORD-BR-2', 'ORD-BR-NEVER-SEEN');

    expect(await h.stock(productId)).toEqual({ availableStock: 9, reservedStock: 1 });
    // After reserving 2+3+1 of 10: 4 available, 6 reserved; each release is counted on from the last.
    expect(await ledger(productId, 'RELEASE')).toEqual([
      { order_id: 'ORD-BR-1', quantity: 2, available_after: 6, reserved_after: 4, sold_after: 0 },
      { order_id: 'ORD-BR-2', quantity: 3, available_after: 9, reserved_after: 1, sold_after: 0 },
    ]);
    // Every cancellation is answered, a repeat with the same lines, an order never reserved with none.
    expect(sent.map((m) => [m.routingKey, (m.body as { order_id: string }).order_id, (m.body as { items: unknown }).items])).toEqual([
      ['stock.released', 'ORD-BR-2', [{ product_id: productId, quantity: 3 }]],
      ['stock.released', 'ORD-BR-1', [{ product_id: productId, quantity: 2 }]],
      ['stock.released', 'ORD-BR-2', [{ product_id: productId, quantity: 3 }]],
      ['stock.released', 'ORD-BR-NEVER-SEEN', []],
    ]);
    expect(new Set(sent.map((m) => m.messageId)).size).toBe(4);

    // The order cancelled before inventory saw it is rejected when its OrderCreated comes late.
    sent = [];
    await reserve([['ORD-BR-NEVER-SEEN', productId, 1]]);
    expect(sent.map((m) => [m.routingKey, (m.body as { reason?: string }).reason])).toEqual([
      ['stock.rejected', CANCELLED_BEFORE_RESERVATION],
    ]);
    expect(await h.stock(productId)).toEqual({ availableStock: 9, reservedStock: 1 });

    // A second cancellation of released orders changes nothing and repeats the lines.
    sent = [];
    await cancel('ORD-BR-1');
    expect(await h.stock(productId)).toEqual({ availableStock: 9, reservedStock: 1 });
    expect((sent[0]?.body as { items: unknown }).items).toEqual([{ product_id: productId, quantity: 2 }]);
  });

  it('sells what a batch of fulfilled orders holds, and does nothing for a repeat', async () => {
    const productId = await h.createProduct('BATCH-SALE', 5);
    await reserve([
      ['ORD-BS-1', productId, 1],
      ['ORD-BS-2', productId, 2],
    ]);
    const fulfil = (...orderIds: string[]) =>
      db.transaction((tx) =>
        applyOrderFulfilledBatch(
          tx,
          orderIds.map((order_id) => ({ event: 'OrderFulfilled', order_id })),
        ),
      );
    await fulfil('ORD-BS-2', 'ORD-BS-1', 'ORD-BS-1');
    await fulfil('ORD-BS-1');
    const { rows } = await db.query<{ available: number; reserved: number; sold: number }>(
      'SELECT available, reserved, sold FROM products WHERE id = $1',
      [productId],
    );
    expect(rows[0]).toEqual({ available: 2, reserved: 0, sold: 3 });
    expect(await ledger(productId, 'SALE')).toEqual([
      { order_id: 'ORD-BS-1', quantity: 1, available_after: 2, reserved_after: 2, sold_after: 1 },
      { order_id: 'ORD-BS-2', quantity: 2, available_after: 2, reserved_after: 0, sold_after: 3 },
    ]);
  });
});
