import { ConflictError, NotFoundError } from '@stockflow/platform';
import type { Database, Queryable } from '@stockflow/db';
import { validAdjustment, type NewProduct, type ProductChanges } from '../domain/catalog.ts';

export interface Product {
  id: number;
  sku: string;
  name: string;
  priceCents: number | null;
  availableStock: number;
  reservedStock: number;
  soldStock: number;
  createdAt: Date;
  updatedAt: Date;
}

export type MovementKind = 'INITIAL' | 'RESTOCK' | 'ADJUSTMENT' | 'RESERVATION' | 'RELEASE' | 'SALE';

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
  createdAt: Date;
}

const PRODUCT_COLUMNS = `id, sku, name, price_cents AS "priceCents", available AS "availableStock",
  reserved AS "reservedStock", sold AS "soldStock", created_at AS "createdAt", updated_at AS "updatedAt"`;

const MOVEMENT_COLUMNS = `id, product_id AS "productId", kind, quantity, available_change AS "availableChange",
  reserved_change AS "reservedChange", sold_change AS "soldChange", available_after AS "availableAfter",
  reserved_after AS "reservedAfter", sold_after AS "soldAfter", order_id AS "orderId", reason, created_at AS "createdAt"`;

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
  movement: { kind: MovementKind; quantity: number; availableChange: number; reason?: string | null },
): Promise<void> {
  await tx.query(
    `INSERT INTO stock_movements (product_id, kind, quantity, available_change, reserved_change, sold_change,
       available_after, reserved_after, sold_after, reason)
     VALUES ($1, $2, $3, $4, 0, 0, $5, $6, $7, $8)`,
    [
      product.id,
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

export function catalogRepository(db: Database) {
  const lockProduct = async (tx: Queryable, id: number): Promise<Product> => {
    const { rows } = await tx.query<Product>(`SELECT ${PRODUCT_COLUMNS} FROM products WHERE id = $1 FOR UPDATE`, [id]);
    const product = rows[0];
    if (!product) throw new NotFoundError(`product ${id} does not exist`, { productId: id });
    return product;
  };

  const changeAvailable = (id: number, kind: 'RESTOCK' | 'ADJUSTMENT', delta: (p: Product) => number, reason: string | null) =>
    db.transaction(async (tx) => {
      const product = await lockProduct(tx, id);
      const change = delta(product);
      const { rows } = await tx.query<Product>(
        `UPDATE products SET available = available + $2, updated_at = now() WHERE id = $1 RETURNING ${PRODUCT_COLUMNS}`,
        [id, change],
      );
      const updated = rows[0] as Product;
      await recordMovement(tx, updated, { kind, quantity: Math.abs(change), availableChange: change, reason });
      return updated;
    });

  return {
    /** Creates the products whose SKU is not taken yet; returns how many were created. */
    async seed(products: readonly NewProduct[]): Promise<number> {
      const { rowCount } = await db.transaction(async (tx) => {
        const created = await tx.query<Product>(
          `INSERT INTO products (sku, name, price_cents, available)
           SELECT sku, name, price_cents, available FROM json_to_recordset($1::json)
             AS x(sku text, name text, price_cents int, available int)
           ON CONFLICT (sku) DO NOTHING RETURNING ${PRODUCT_COLUMNS}`,
          [JSON.stringify(products.map((p) => ({ sku: p.sku, name: p.name, price_cents: p.priceCents, available: p.initialStock })))],
        );
        for (const product of created.rows) {
          await recordMovement(tx, product, { kind: 'INITIAL', quantity: product.availableStock, availableChange: product.availableStock });
        }
        return created;
      });
      return rowCount;
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
            `INSERT INTO products (sku, name, price_cents, available) VALUES ($1, $2, $3, $4) RETURNING ${PRODUCT_COLUMNS}`,
            [input.sku, input.name, input.priceCents, input.initialStock],
          );
          const product = rows[0] as Product;
          await recordMovement(tx, product, { kind: 'INITIAL', quantity: input.initialStock, availableChange: input.initialStock });
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
             updated_at = now()
           WHERE id = $1 RETURNING ${PRODUCT_COLUMNS}`,
          [id, changes.sku ?? null, changes.name ?? null, changes.priceCents !== undefined, changes.priceCents ?? null],
        )
        .catch((error: unknown) => {
          if (isUniqueViolation(error)) throw new ConflictError(`a product with sku "${changes.sku}" already exists`, { sku: changes.sku });
          throw error;
        });
      const product = rows[0];
      if (!product) throw new NotFoundError(`product ${id} does not exist`, { productId: id });
      return product;
    },

    restock: (id: number, quantity: number, note: string | null) => changeAvailable(id, 'RESTOCK', () => quantity, note),

    adjust: (id: number, delta: number, reason: string) =>
      changeAvailable(id, 'ADJUSTMENT', (p) => validAdjustment(delta, p.availableStock), reason),

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
