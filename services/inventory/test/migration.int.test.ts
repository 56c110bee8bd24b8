import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase, migrate, type Database } from '@stockflow/db';
import { platformMigrations } from '@stockflow/messaging';
import { createTestDatabase, type TestDatabase } from '@stockflow/testing';
import { applyOrderCancelledBatch } from '../src/db/releases.ts';
import { systemClock } from '@stockflow/platform';
import { inventoryMigrations } from '../src/service.ts';
import { servicesUnavailable } from './harness.ts';

const MIGRATIONS = path.join(import.meta.dirname, '..', 'src', 'db', 'migrations');

/** A database as it was before stock locations (0001 only), with stock and a held order, then migrated. */
describe.skipIf(servicesUnavailable)('the migration to stock locations', () => {
  let database: TestDatabase;
  let db: Database;
  let before: string;

  beforeAll(async () => {
    database = await createTestDatabase('inventory_migration');
    db = createPostgresDatabase({ url: database.url, poolSize: 2, applicationName: 'migration-test' });
    before = await mkdtemp(path.join(os.tmpdir(), 'inventory-0001-'));
    await copyFile(path.join(MIGRATIONS, '0001_inventory.sql'), path.join(before, '0001_inventory.sql'));
    await migrate(db, [platformMigrations, { scope: 'inventory', dir: before }]);
  });
  afterAll(async () => {
    await db?.close();
    await database?.drop();
    if (before) await rm(before, { recursive: true, force: true });
  });

  it('moves existing stock, held lines and the ledger to MAIN, so a release after it returns the units there', async () => {
    const { rows } = await db.query<{ id: number }>(
      `INSERT INTO products (sku, name, available, reserved, sold) VALUES ('OLD', 'Old', 7, 2, 1) RETURNING id`,
    );
    const id = rows[0]?.id as number;
    await db.query(`INSERT INTO reservations (order_id, product_id, quantity, status) VALUES ('ORD-OLD', $1, 2, 'HELD')`, [id]);
    await db.query(
      `INSERT INTO stock_movements (product_id, kind, quantity, available_change, reserved_change, sold_change,
                                    available_after, reserved_after, sold_after)
       VALUES ($1, 'INITIAL', 10, 10, 0, 0, 10, 0, 0)`,
      [id],
    );

    expect(await migrate(db, inventoryMigrations)).toEqual(['inventory/0002_locations.sql', 'inventory/0003_hot_path_foreign_keys.sql']);

    const level = await db.query(
      `SELECT l.code, l.priority, s.available, s.reserved, s.sold FROM stock_levels s JOIN stock_locations l ON l.id = s.location_id
       WHERE s.product_id = $1`,
      [id],
    );
    expect(level.rows).toEqual([{ code: 'MAIN', priority: 100, available: 7, reserved: 2, sold: 1 }]);
    const held = await db.query(
      `SELECT a.quantity, l.code FROM reservation_allocations a JOIN stock_locations l ON l.id = a.location_id WHERE a.order_id = 'ORD-OLD'`,
    );
    expect(held.rows).toEqual([{ quantity: 2, code: 'MAIN' }]);
    const ledger = await db.query(
      `SELECT l.code FROM stock_movements m JOIN stock_locations l ON l.id = m.location_id WHERE m.product_id = $1`,
      [id],
    );
    expect(ledger.rows).toEqual([{ code: 'MAIN' }]);
    const product = await db.query('SELECT backorder_limit, backordered FROM products WHERE id = $1', [id]);
    expect(product.rows).toEqual([{ backorder_limit: 0, backordered: 0 }]);

    await db.transaction((tx) =>
      applyOrderCancelledBatch(tx, [{ event: 'OrderCancelled', order_id: 'ORD-OLD' }], {
        clock: systemClock,
        outbox: { enqueue: () => Promise.resolve() },
      }),
    );
    const after = await db.query('SELECT available, reserved, sold FROM stock_levels WHERE product_id = $1', [id]);
    expect(after.rows).toEqual([{ available: 9, reserved: 0, sold: 1 }]);
  });

  // The previous version moves a product's counters without its levels; were such a write to land,
  // allocation would trust levels that no longer add up. Every one of its stock writes carries a
  // ledger row without a location, so the whole transaction fails instead (docs/operations.md).
  it("refuses the previous version's stock writes whole after it: a restock and a reservation change nothing", async () => {
    const { rows } = await db.query<{ id: number }>(`SELECT id FROM products WHERE sku = 'OLD'`);
    const id = rows[0]?.id as number;
    const state = async () => ({
      product: (await db.query('SELECT available, reserved, sold FROM products WHERE id = $1', [id])).rows,
      levels: (await db.query('SELECT available, reserved, sold FROM stock_levels WHERE product_id = $1', [id])).rows,
      decisions: (await db.query(`SELECT order_id FROM order_decisions WHERE order_id = 'ORD-BY-OLD'`)).rows,
    });
    const before = await state();

    // The previous version's restock (catalog.ts at 40e87d7): the product's sum, then its ledger row.
    const restock = db.transaction(async (tx) => {
      await tx.query('SELECT id FROM products WHERE id = $1 FOR UPDATE', [id]);
      await tx.query('UPDATE products SET available = available + $2, updated_at = now() WHERE id = $1', [id, 5]);
      await tx.query(
        `INSERT INTO stock_movements (product_id, kind, quantity, available_change, reserved_change, sold_change,
           available_after, reserved_after, sold_after, reason)
         VALUES ($1, 'RESTOCK', 5, 5, 0, 0, 14, 0, 1, NULL)`,
        [id],
      );
    });
    await expect(restock).rejects.toMatchObject({ code: '23502', column: 'location_id' });

    // The previous version's reservation (reservations.ts at 40e87d7): one statement, ledger rows included.
    const reservation = db.query(
      `WITH recorded AS (
         INSERT INTO order_decisions (order_id, outcome, reason, event, routing_key)
         VALUES ('ORD-BY-OLD', 'RESERVED', NULL, '{}', 'stock.reserved') RETURNING order_id
       ), updated AS (
         UPDATE products p SET available = p.available - 2, reserved = p.reserved + 2, updated_at = now()
         WHERE p.id = $1 RETURNING p.id, p.available + 2 AS available_before, p.reserved - 2 AS reserved_before, p.sold
       ), held AS (
         INSERT INTO reservations (order_id, product_id, quantity, status) VALUES ('ORD-BY-OLD', $1, 2, 'HELD')
       ), moved AS (
         INSERT INTO stock_movements (product_id, kind, quantity, available_change, reserved_change, sold_change,
                                      available_after, reserved_after, sold_after, order_id)
         SELECT u.id, 'RESERVATION', 2, -2, 2, 0, u.available_before - 2, u.reserved_before + 2, u.sold, 'ORD-BY-OLD' FROM updated u
       )
       SELECT count(*)::int AS recorded FROM recorded`,
      [id],
    );
    await expect(reservation).rejects.toMatchObject({ code: '23502', column: 'location_id' });

    expect(await state()).toEqual(before);
  });

  // The reservation's rows lost their foreign keys (0003); what the keys also kept, the rows they
  // refer to under the ids they refer to, is kept by refusing every deletion of them and every
  // change of those ids.
  const deleted = (table: string) => `${table} rows are never deleted: reservations and the stock ledger refer to them`;
  const changed = (table: string) => `the ids in ${table} never change: reservations and the stock ledger refer to them`;
  it.each([
    ['products', `DELETE FROM products WHERE sku = 'OLD'`, deleted],
    ['products', 'TRUNCATE products CASCADE', deleted],
    ['products', `UPDATE products SET id = id + 1000 WHERE sku = 'OLD'`, changed],
    ['stock_locations', `DELETE FROM stock_locations WHERE code = 'MAIN'`, deleted],
    ['stock_locations', 'TRUNCATE stock_locations CASCADE', deleted],
    ['stock_locations', `UPDATE stock_locations SET id = 999 WHERE code = 'MAIN'`, changed],
    ['reservations', `DELETE FROM reservations WHERE order_id = 'ORD-OLD'`, deleted],
    ['reservations', 'TRUNCATE reservations CASCADE', deleted],
    ['reservations', `UPDATE reservations SET product_id = 424242 WHERE order_id = 'ORD-OLD'`, changed],
    ['reservations', `UPDATE reservations SET order_id = 'ORD-ELSE' WHERE order_id = 'ORD-OLD'`, changed],
    ['reservation_allocations', `UPDATE reservation_allocations SET location_id = 888 WHERE order_id = 'ORD-OLD'`, changed],
    ['stock_movements', 'UPDATE stock_movements SET product_id = 777, location_id = 888', changed],
  ])('keeps %s as it is: %s is refused', async (table, statement, message) => {
    const rows = async () =>
      (await db.query<{ rows: string }>(`SELECT count(*) || ':' || md5(string_agg(t::text, ',' ORDER BY t::text)) AS rows FROM ${table} t`))
        .rows[0]?.rows;
    const before = await rows();
    expect(before).not.toMatch(/^0:/);
    await expect(db.query(statement)).rejects.toMatchObject({ code: '23001', message: message(table) });
    expect(await rows()).toBe(before);
  });
});
