import { MAX_STOCK_LOCATIONS } from '@stockflow/contracts';
import { ConflictError, NotFoundError, ValidationError } from '@stockflow/platform';
import type { Database, Queryable } from '@stockflow/db';
import {
  MAIN_LOCATION,
  validAdjustment,
  validRestock,
  validTransfer,
  type NewLocation,
  type NewProduct,
  type ProductChanges,
} from '../domain/catalog.ts';
import { fillFromArrival, type ArrivalEffects } from './backorders.ts';

export interface Product {
  id: number;
  sku: string;
  name: string;
  priceCents: number | null;
  availableStock: number;
  reservedStock: number;
  soldStock: number;
  backorderLimit: number;
  backorderedStock: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface StockLocation {
  id: number;
  code: string;
  name: string;
  priority: number;
}

/** A product's counters at one location. */
export interface StockLevel {
  productId: number;
  location: StockLocation;
  available: number;
  reserved: number;
  sold: number;
}

export type MovementKind = 'INITIAL' | 'RESTOCK' | 'ADJUSTMENT' | 'RESERVATION' | 'RELEASE' | 'SALE' | 'TRANSFER';

export interface StockMovement {
  id: number;
  productId: number;
  kind: MovementKind;
  quantity: number;
  availableChange: number;
  reservedChange: number;
  soldChange: number;
  availableAfter: number;
  reservedAfter: number;
  soldAfter: number;
  orderId: string | null;
  reason: string | null;
  locationCode: string;
  createdAt: Date;
}

const PRODUCT_COLUMNS = `id, sku, name, price_cents AS "priceCents", available AS "availableStock",
  reserved AS "reservedStock", sold AS "soldStock", backorder_limit AS "backorderLimit", backordered AS "backorderedStock",
  created_at AS "createdAt", updated_at AS "updatedAt"`;

const MOVEMENT_COLUMNS = `id, product_id AS "productId", kind, quantity, available_change AS "availableChange",
  reserved_change AS "reservedChange", sold_change AS "soldChange", available_after AS "availableAfter",
  reserved_after AS "reservedAfter", sold_after AS "soldAfter", order_id AS "orderId", reason,
  (SELECT code FROM stock_locations l WHERE l.id = location_id) AS "locationCode", created_at AS "createdAt"`;

const LOCATION_COLUMNS = 'id, code, name, priority';

export interface ProductFilter {
  ids?: number[] | undefined;
  /** Matches name or SKU, case-insensitively, anywhere in the text. */
  search?: string | undefined;
  /** Only products with at most this many units available. */
  availableAtMost?: number | undefined;
  inStock?: boolean | undefined;
}

const isUniqueViolation = (error: unknown) => (error as { code?: string }).code === '23505';

function whereClause(filter: ProductFilter, params: unknown[]): string {
  const conditions: string[] = [];
  if (filter.ids) {
    params.push(filter.ids);
    conditions.push(`id = ANY($${params.length}::int[])`);
  }
  if (filter.search) {
    params.push(`%${filter.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    conditions.push(`(name ILIKE $${params.length} OR sku ILIKE $${params.length})`);
  }
  if (filter.availableAtMost !== undefined) {
    params.push(filter.availableAtMost);
    conditions.push(`available <= $${params.length}`);
  }
  if (filter.inStock !== undefined) conditions.push(filter.inStock ? 'available > 0' : 'available = 0');
  return conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
}

async function recordMovement(
  tx: Queryable,
  product: Product,
  locationId: number,
  movement: { kind: MovementKind; quantity: number; availableChange: number; reason?: string | null },
): Promise<void> {
  await tx.query(
    `INSERT INTO stock_movements (product_id, location_id, kind, quantity, available_change, reserved_change, sold_change,
       available_after, reserved_after, sold_after, reason)
     VALUES ($1, $2, $3, $4, $5, 0, 0, $6, $7, $8, $9)`,
    [
      product.id,
      locationId,
      movement.kind,
      movement.quantity,
      movement.availableChange,
      product.availableStock,
      product.reservedStock,
      product.soldStock,
      movement.reason ?? null,
    ],
  );
}

/** Creates the products whose SKU is not taken yet, their stock at MAIN; returns how many were created. */
export async function seedCatalog(db: Database, products: readonly NewProduct[]): Promise<number> {
  const { rowCount } = await db.transaction(async (tx) => {
    const created = await tx.query<Product>(
      `INSERT INTO products (sku, name, price_cents, available)
       SELECT sku, name, price_cents, available FROM json_to_recordset($1::json)
         AS x(sku text, name text, price_cents int, available int)
       ON CONFLICT (sku) DO NOTHING RETURNING ${PRODUCT_COLUMNS}`,
      [JSON.stringify(products.map((p) => ({ sku: p.sku, name: p.name, price_cents: p.priceCents, available: p.initialStock })))],
    );
    const main = await locationByCode(tx, MAIN_LOCATION);
    for (const product of created.rows) await stockInitially(tx, product, main.id);
    return created;
  });
  return rowCount;
}

/** A new product's stock: its level at the location and the INITIAL ledger row. */
async function stockInitially(tx: Queryable, product: Product, locationId: number): Promise<void> {
  await tx.query('INSERT INTO stock_levels (product_id, location_id, available) VALUES ($1, $2, $3)', [
    product.id,
    locationId,
    product.availableStock,
  ]);
  await recordMovement(tx, product, locationId, {
    kind: 'INITIAL',
    quantity: product.availableStock,
    availableChange: product.availableStock,
  });
}

async function locationByCode(tx: Queryable, code: string): Promise<StockLocation> {
  const { rows } = await tx.query<StockLocation>(`SELECT ${LOCATION_COLUMNS} FROM stock_locations WHERE code = $1`, [code]);
  const location = rows[0];
  if (!location) throw new NotFoundError(`stock location ${code} does not exist`, { locationCode: code });
  return location;
}

/** Moves a product's available units at a location by `change` (its level is created when missing), and the product's sum with it. */
async function changeLevel(tx: Queryable, productId: number, locationId: number, change: number): Promise<Product> {
  // A level is created by the first units it receives; units leave only a level that has them
  // (an insert of a negative count would fail its CHECK before finding the level there).
  await tx.query(
    change > 0
      ? `INSERT INTO stock_levels (product_id, location_id, available) VALUES ($1, $2, $3)
         ON CONFLICT (product_id, location_id) DO UPDATE SET available = stock_levels.available + EXCLUDED.available`
      : 'UPDATE stock_levels SET available = available + $3 WHERE product_id = $1 AND location_id = $2',
    [productId, locationId, change],
  );
  const { rows } = await tx.query<Product>(
    `UPDATE products SET available = available + $2, updated_at = now() WHERE id = $1 RETURNING ${PRODUCT_COLUMNS}`,
    [productId, change],
  );
  return rows[0] as Product;
}

const isCheckViolation = (error: unknown, constraint: string) =>
  (error as { code?: string }).code === '23514' && (error as { constraint?: string }).constraint === constraint;

export function catalogRepository(db: Database, effects: ArrivalEffects) {
  const lockProduct = async (tx: Queryable, id: number): Promise<Product> => {
    const { rows } = await tx.query<Product>(`SELECT ${PRODUCT_COLUMNS} FROM products WHERE id = $1 FOR UPDATE`, [id]);
    const product = rows[0];
    if (!product) throw new NotFoundError(`product ${id} does not exist`, { productId: id });
    return product;
  };

  const levelAvailable = async (tx: Queryable, productId: number, locationId: number): Promise<number> => {
    const { rows } = await tx.query<{ available: number }>(
      'SELECT available FROM stock_levels WHERE product_id = $1 AND location_id = $2',
      [productId, locationId],
    );
    return rows[0]?.available ?? 0;
  };

  const changeAvailable = (
    id: number,
    locationCode: string,
    kind: 'RESTOCK' | 'ADJUSTMENT',
    delta: (available: number, productAvailable: number) => number,
    reason: string | null,
  ) =>
    db.transaction(async (tx) => {
      const product = await lockProduct(tx, id);
      const location = await locationByCode(tx, locationCode);
      const change = delta(await levelAvailable(tx, id, location.id), product.availableStock);
      const changed = await changeLevel(tx, id, location.id, change);
      await recordMovement(tx, changed, location.id, { kind, quantity: Math.abs(change), availableChange: change, reason });
      // The product row changes again only when a backorder was filled.
      if (change > 0 && (await fillFromArrival(tx, id, location, effects))) return lockProduct(tx, id);
      return changed;
    });

  return {
    async locations(): Promise<StockLocation[]> {
      const { rows } = await db.query<StockLocation>(`SELECT ${LOCATION_COLUMNS} FROM stock_locations ORDER BY priority, code`);
      return rows;
    },

    createLocation: (input: NewLocation): Promise<StockLocation> =>
      db
        .transaction(async (tx) => {
          // Creations take turns, so two at once cannot both see room for one more; reads go on.
          await tx.query('LOCK TABLE stock_locations IN EXCLUSIVE MODE');
          const { rows: counted } = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM stock_locations');
          if ((counted[0]?.n ?? 0) >= MAX_STOCK_LOCATIONS) {
            throw new ConflictError(`there are ${MAX_STOCK_LOCATIONS} stock locations already, the most there may be`, {
              maxLocations: MAX_STOCK_LOCATIONS,
            });
          }
          const { rows } = await tx.query<StockLocation>(
            `INSERT INTO stock_locations (code, name, priority) VALUES ($1, $2, $3) RETURNING ${LOCATION_COLUMNS}`,
            [input.code, input.name, input.priority],
          );
          return rows[0] as StockLocation;
        })
        .catch((error: unknown) => {
          if (isUniqueViolation(error)) {
            throw new ConflictError(`a stock location with code "${input.code}" already exists`, { locationCode: input.code });
          }
          throw error;
        }),

    /** Every level of the products, each product's in order of allocation preference. */
    async levels(productIds: readonly number[]): Promise<StockLevel[]> {
      const { rows } = await db.query<{ productId: number; available: number; reserved: number; sold: number } & StockLocation>(
        `SELECT s.product_id AS "productId", s.available, s.reserved, s.sold, l.id, l.code, l.name, l.priority
         FROM stock_levels s JOIN stock_locations l ON l.id = s.location_id
         WHERE s.product_id = ANY($1::int[]) ORDER BY s.product_id, l.priority, l.code`,
        [productIds],
      );
      return rows.map(({ productId, available, reserved, sold, id, code, name, priority }) => ({
        productId,
        location: { id, code, name, priority },
        available,
        reserved,
        sold,
      }));
    },

    async byIds(ids: readonly number[]): Promise<Product[]> {
      const { rows } = await db.query<Product>(`SELECT ${PRODUCT_COLUMNS} FROM products WHERE id = ANY($1::int[])`, [ids]);
      return rows;
    },

    async list(filter: ProductFilter, page: { afterId: number | undefined; limit: number }) {
      const params: unknown[] = [];
      const where = whereClause(filter, params);
      const countParams = [...params];
      const pageWhere = page.afterId === undefined ? where : `${where ? `${where} AND` : 'WHERE'} id > $${params.push(page.afterId)}`;
      params.push(page.limit + 1);
      const [{ rows }, count] = await Promise.all([
        db.query<Product>(`SELECT ${PRODUCT_COLUMNS} FROM products ${pageWhere} ORDER BY id LIMIT $${params.length}`, params),
        db.query<{ total: number }>(`SELECT count(*) AS total FROM products ${where}`, countParams),
      ]);
      return { rows: rows.slice(0, page.limit), hasNextPage: rows.length > page.limit, totalCount: count.rows[0]?.total ?? 0 };
    },

    create: (input: NewProduct) =>
      db
        .transaction(async (tx) => {
          const { rows } = await tx.query<Product>(
            `INSERT INTO products (sku, name, price_cents, available, backorder_limit) VALUES ($1, $2, $3, $4, $5)
             RETURNING ${PRODUCT_COLUMNS}`,
            [input.sku, input.name, input.priceCents, input.initialStock, input.backorderLimit ?? 0],
          );
          const product = rows[0] as Product;
          await stockInitially(tx, product, (await locationByCode(tx, MAIN_LOCATION)).id);
          return product;
        })
        .catch((error: unknown) => {
          if (isUniqueViolation(error)) throw new ConflictError(`a product with sku "${input.sku}" already exists`, { sku: input.sku });
          throw error;
        }),

    async update(id: number, changes: ProductChanges): Promise<Product> {
      const { rows } = await db
        .query<Product>(
          `UPDATE products SET
             sku = COALESCE($2, sku),
             name = COALESCE($3, name),
             price_cents = CASE WHEN $4::boolean THEN $5::int ELSE price_cents END,
             backorder_limit = COALESCE($6, backorder_limit),
             updated_at = now()
           WHERE id = $1 RETURNING ${PRODUCT_COLUMNS}`,
          [
            id,
            changes.sku ?? null,
            changes.name ?? null,
            changes.priceCents !== undefined,
            changes.priceCents ?? null,
            changes.backorderLimit ?? null,
          ],
        )
        .catch((error: unknown) => {
          if (isUniqueViolation(error)) throw new ConflictError(`a product with sku "${changes.sku}" already exists`, { sku: changes.sku });
          if (isCheckViolation(error, 'products_backordered_within_limit')) {
            throw new ValidationError('backorderLimit may not be below the units backordered now', { field: 'backorderLimit' });
          }
          throw error;
        });
      const product = rows[0];
      if (!product) throw new NotFoundError(`product ${id} does not exist`, { productId: id });
      return product;
    },

    restock: (id: number, quantity: number, note: string | null, locationCode = MAIN_LOCATION) =>
      changeAvailable(id, locationCode, 'RESTOCK', (_available, productAvailable) => validRestock(quantity, productAvailable), note),

    adjust: (id: number, delta: number, reason: string, locationCode = MAIN_LOCATION) =>
      changeAvailable(
        id,
        locationCode,
        'ADJUSTMENT',
        (available, productAvailable) => validAdjustment(delta, available, productAvailable),
        reason,
      ),

    /** Moves available units between two locations (a TRANSFER ledger row on each side), then fills backorders at the receiving one. */
    transfer: (id: number, fromCode: string, toCode: string, quantity: number) =>
      db.transaction(async (tx) => {
        await lockProduct(tx, id);
        const from = await locationByCode(tx, fromCode);
        const to = await locationByCode(tx, toCode);
        validTransfer(from.code, to.code, quantity, await levelAvailable(tx, id, from.id));
        const taken = await changeLevel(tx, id, from.id, -quantity);
        await recordMovement(tx, taken, from.id, { kind: 'TRANSFER', quantity, availableChange: -quantity, reason: `to ${to.code}` });
        const given = await changeLevel(tx, id, to.id, quantity);
        await recordMovement(tx, given, to.id, { kind: 'TRANSFER', quantity, availableChange: quantity, reason: `from ${from.code}` });
        return (await fillFromArrival(tx, id, to, effects)) ? lockProduct(tx, id) : given;
      }),

    async movements(productId: number, page: { afterId: number | undefined; limit: number; kinds?: MovementKind[] | undefined }) {
      const params: unknown[] = [productId];
      let where = 'WHERE product_id = $1';
      if (page.kinds && page.kinds.length > 0) where += ` AND kind = ANY($${params.push(page.kinds)}::text[])`;
      const countParams = [...params];
      const pageWhere = page.afterId === undefined ? where : `${where} AND id > $${params.push(page.afterId)}`;
      params.push(page.limit + 1);
      const [{ rows }, count] = await Promise.all([
        db.query<StockMovement>(`SELECT ${MOVEMENT_COLUMNS} FROM stock_movements ${pageWhere} ORDER BY id LIMIT $${params.length}`, params),
        db.query<{ total: number }>(`SELECT count(*) AS total FROM stock_movements ${where}`, countParams),
      ]);
      return { rows: rows.slice(0, page.limit), hasNextPage: rows.length > page.limit, totalCount: count.rows[0]?.total ?? 0 };
    },
  };
}

export type CatalogRepository = ReturnType<typeof catalogRepository>;
