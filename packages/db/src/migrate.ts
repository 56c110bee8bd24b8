import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Database } from './database.ts';

/** Any fixed number works; it only has to be the same for every instance of every service. */
const MIGRATION_LOCK_KEY = 7_413_001;

export interface MigrationSource {
  /** Recorded with each file name, so the platform's and a service's 0001 never collide. */
  scope: string;
  dir: string;
}

/**
 * A scope's migrations: the `.sql` files beside its source, or, in a build (`npm run build`
 * bundles each service into one file), the copies under `migrations/<scope>` next to the bundle,
 * which is where this module then lives.
 */
export function migrationSource(scope: string, sourceDir: string): MigrationSource {
  const bundled = path.join(import.meta.dirname, 'migrations', scope);
  return { scope, dir: existsSync(bundled) ? bundled : sourceDir };
}

/**
 * How long a migration waits for a table lock before it gives way, and how often it tries again.
 * Migrations run while the previous version serves (a rolling update): a DDL statement's lock
 * queues every query on its table behind it, and one that takes its tables in another order than a
 * live transaction deadlocks with it. A short wait, given up and retried, keeps the traffic moving
 * and lets the migration through between transactions.
 */
const MIGRATION_LOCK_TIMEOUT = '2s';
const MIGRATION_ATTEMPTS = 10;
const MIGRATION_RETRY_MS = 500;
/** lock_not_available (the lock timeout) and deadlock_detected: the migration lost to live traffic. */
const GAVE_WAY = new Set(['55P03', '40P01']);

/**
 * Applies the `NNNN_name.sql` files of each source that have not run yet, in name order, each in
 * its own transaction. An advisory lock makes concurrent starts of several instances take turns;
 * a migration that cannot take its table locks within MIGRATION_LOCK_TIMEOUT is rolled back and
 * tried again.
 */
export async function migrate(db: Database, sources: MigrationSource[]): Promise<string[]> {
  const applied: string[] = [];
  for (const source of sources) {
    const files = (await readdir(source.dir)).filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f)).sort();
    for (const file of files) {
      applied.push(...(await applyOne(db, source, file)));
    }
  }
  return applied;
}

async function applyOne(db: Database, source: MigrationSource, file: string): Promise<string[]> {
  const name = `${source.scope}/${file}`;
  const sql = await readFile(path.join(source.dir, file), 'utf8');
  for (let attempt = 1; ; attempt += 1) {
    try {
      const ran = await db.transaction(async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
        await tx.exec('CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
        const done = await tx.query('SELECT 1 FROM schema_migrations WHERE name = $1', [name]);
        if (done.rowCount > 0) return false;
        // After the advisory lock: waiting for another instance's migrations is not giving way.
        await tx.exec(`SET LOCAL lock_timeout = '${MIGRATION_LOCK_TIMEOUT}'`);
        await tx.exec(sql);
        await tx.query('INSERT INTO schema_migrations (name) VALUES ($1)', [name]);
        return true;
      });
      return ran ? [name] : [];
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (typeof code !== 'string' || !GAVE_WAY.has(code) || attempt >= MIGRATION_ATTEMPTS) throw error;
      await new Promise((resolve) => setTimeout(resolve, MIGRATION_RETRY_MS * attempt));
    }
  }
}
