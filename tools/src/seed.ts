/** `npm run seed`: loads the sample catalog into the Inventory Service database (idempotent). */
import { createPostgresDatabase, migrate } from '@stockflow/db';
import { seedCatalog, SAMPLE_CATALOG, inventoryMigrations } from '@stockflow/inventory';
import { fail } from './cli.ts';

const url = process.env.INVENTORY_DATABASE_URL ?? process.env.DATABASE_URL;
if (!url) fail('Set DATABASE_URL (or INVENTORY_DATABASE_URL) to the Inventory Service database.');
const db = createPostgresDatabase({ url, poolSize: 1, applicationName: 'seed' });
try {
  await migrate(db, inventoryMigrations);
  const created = await seedCatalog(db, SAMPLE_CATALOG);
  const { rows } = await db.query<{ id: number; sku: string; available: number }>(
    'SELECT id, sku, available FROM products WHERE sku = ANY($1::text[]) ORDER BY id',
    [SAMPLE_CATALOG.map((p) => p.sku)],
  );
  console.log(`created ${created} of ${SAMPLE_CATALOG.length} sample products`);
  for (const row of rows) console.log(`  product ${row.id}  ${row.sku.padEnd(18)} available ${row.available}`);
} catch (error) {
  fail(`seeding failed: ${(error as Error).message}`);
} finally {
  await db.close();
}
