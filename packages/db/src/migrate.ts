import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
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
 * How long a migration waits for each table lock before it gives way, and how often it tries
 * again. Migrations run while the previous version serves (a rolling update): a DDL statement's
 * lock queues every query on its table behind it, and a migration that takes its tables in
 * another order than a live transaction deadlocks with it. A wait shorter than PostgreSQL's
 * deadlock_timeout (1 s by default) ends before a live transaction caught in such a cycle checks
 * for the deadlock, so the migration gives way, not the batch or the request, as long as it asks
 * for its next lock within about 500 ms of the live transaction starting to wait. Each wait is
 * bounded, not their sum, and a lock is held from when it is granted: a migration that needs
 * several locks takes them first, together, under a timeout of its own (inventory's 0003 shows
 * how; a convention of the migration files, which this runner does not check). After the last
 * try, 20 to 40 s after the first, the migration fails and so does the start: the previous
 * version keeps serving, and the next start tries again.
 */
const MIGRATION_LOCK_TIMEOUT_MS = 500;
const MIGRATION_ATTEMPTS = 20;
/** Each retry waits up to this much longer than the one before (with jitter, so instances starting together do not line up). */
const MIGRATION_RETRY_STEP_MS = 100;
/**
 * lock_not_available (the lock timeout, or what a migration raises when its own timeout on the
 * locks it takes together ran out) and deadlock_detected: the migration lost to live traffic.
 * Not query_canceled: an operator's cancel, or a role's statement_timeout shorter than the
 * migration, is final.
 */
const GAVE_WAY = new Set(['55P03', '40P01']);

/** Told of each migration that gave way to live traffic and will be tried again. */
export type MigrationRetry = (retry: { migration: string; attempt: number; code: string; error: Error }) => void;

/**
 * Applies the `NNNN_name.sql` files of each source that have not run yet, in name order, each in
 * its own transaction. An advisory lock makes concurrent starts of several instances take turns;
 * a migration that cannot take a table lock within MIGRATION_LOCK_TIMEOUT_MS, or deadlocks, is
 * rolled back whole and tried again, up to MIGRATION_ATTEMPTS times.
 */
export async function migrate(db: Database, sources: MigrationSource[], onRetry?: MigrationRetry): Promise<string[]> {
  const applied: string[] = [];
  for (const source of sources) {
    const files = (await readdir(source.dir)).filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f)).sort();
    for (const file of files) {
      applied.push(...(await applyOne(db, source, file, onRetry)));
    }
  }
  return applied;
}

async function applyOne(db: Database, source: MigrationSource, file: string, onRetry?: MigrationRetry): Promise<string[]> {
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
        await tx.exec(`SET LOCAL lock_timeout = ${MIGRATION_LOCK_TIMEOUT_MS}`);
        await tx.exec(sql);
        await tx.query('INSERT INTO schema_migrations (name) VALUES ($1)', [name]);
        return true;
      });
      return ran ? [name] : [];
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (typeof code !== 'string' || !GAVE_WAY.has(code) || attempt >= MIGRATION_ATTEMPTS) throw error;
      onRetry?.({ migration: name, attempt, code, error: error as Error });
      await sleep(MIGRATION_RETRY_STEP_MS * attempt * (0.5 + Math.random()));
    }
  }
}
