/** `npm run migrate`: applies pending migrations to each service database configured. */
import { createPostgresDatabase, migrate } from '@stockflow/db';
import { inventoryMigrations } from '@stockflow/inventory';
import { fail } from './cli.ts';

const targets = [{ name: 'inventory', url: process.env.INVENTORY_DATABASE_URL ?? process.env.DATABASE_URL, sources: inventoryMigrations }];

const configured = targets.filter((t) => t.url);
if (configured.length === 0) fail('Set DATABASE_URL (or INVENTORY_DATABASE_URL) to the database to migrate.');
for (const target of configured) {
  const db = createPostgresDatabase({ url: target.url as string, poolSize: 1, applicationName: 'migrate' });
  try {
    const applied = await migrate(db, target.sources);
    console.log(`${target.name}: ${applied.length === 0 ? 'up to date' : `applied ${applied.join(', ')}`}`);
  } catch (error) {
    fail(`${target.name}: migration failed: ${(error as Error).message}`);
  } finally {
    await db.close();
  }
}
