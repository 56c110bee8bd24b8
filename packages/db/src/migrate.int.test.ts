import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, eventually, type TestDatabase } from '@stockflow/testing';
import { migrate, type MigrationRetry } from './migrate.ts';
import { createPostgresDatabase } from './postgres.ts';
import type { Database } from './database.ts';

const servicesUnavailable = inject('servicesUnavailable');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Migrations running beside live traffic (a rolling update): transactions of the previous version
 * hold locks on the tables a migration alters, or take them in the other order.
 */
describe.skipIf(servicesUnavailable)('migrations beside live traffic', () => {
  let database: TestDatabase;
  let db: Database;
  let dir: string;
  const live: pg.Client[] = [];
  const client = async () => {
    const c = new pg.Client({ connectionString: database.url });
    await c.connect();
    live.push(c);
    return c;
  };
  const source = () => [{ scope: 'traffic', dir }];
  const retries: Parameters<MigrationRetry>[0][] = [];
  const onRetry: MigrationRetry = (retry) => retries.push(retry);
  /**
   * Resolves once a lock on `table` is as asked: `waited` once a session waits for one (the
   * migration has reached it), `held` once the migration holds it exclusively.
   */
  const lockOn = (observer: pg.Client, table: string, state: 'waited' | 'held') =>
    eventually(
      async () =>
        (
          await observer.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_locks WHERE relation = $1::regclass AND ${
              state === 'waited' ? 'NOT granted' : "granted AND mode = 'AccessExclusiveLock'"
            }`,
            [table],
          )
        ).rows[0]?.n ?? 0,
      (n) => n > 0,
      10_000,
      20,
    );

  beforeAll(async () => {
    database = await createTestDatabase('migrate_traffic');
    db = createPostgresDatabase({ url: database.url, poolSize: 2, applicationName: 'migrate-test' });
    dir = await mkdtemp(path.join(os.tmpdir(), 'migrate-traffic-'));
    await writeFile(
      path.join(dir, '0001_stock.sql'),
      'CREATE TABLE stock (id int PRIMARY KEY, units int NOT NULL); CREATE TABLE ledger (id int PRIMARY KEY, units int NOT NULL);',
    );
    await migrate(db, source());
    await db.query('INSERT INTO stock (id, units) VALUES (1, 10)');
    await db.query('INSERT INTO ledger (id, units) VALUES (1, 10)');
  });
  afterAll(async () => {
    for (const c of live) await c.end().catch(() => undefined);
    await db?.close();
    await database?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /**
   * A live transaction that has read `held` goes on for 3 s, longer than the migration's lock
   * timeout; once the migration waits for `held`, another query of the traffic reads stock.
   * Resolves with how long that read waited, and what the migration applied.
   */
  const besideAHolder = async (held: 'stock' | 'ledger') => {
    const holder = await client();
    await holder.query('BEGIN');
    await holder.query(`SELECT units FROM ${held} WHERE id = 1`);
    const started = Date.now();
    const migrating = migrate(db, source(), onRetry);
    await lockOn(await client(), held, 'waited');
    const asked = Date.now();
    const readMs = await (await client()).query('SELECT units FROM stock WHERE id = 1').then(() => Date.now() - asked);
    await sleep(3_000 - (Date.now() - started));
    await holder.query('COMMIT');
    return { readMs, applied: await migrating };
  };

  it('gives way to a transaction holding its table, so queries do not queue behind it, and is applied once that transaction ends', async () => {
    retries.length = 0;
    await writeFile(path.join(dir, '0002_reserved.sql'), 'ALTER TABLE stock ADD COLUMN reserved int NOT NULL DEFAULT 0;');
    const { readMs, applied } = await besideAHolder('stock');

    // Answered once the migration gave way (500 ms), not when the holder ends, 3 s after it began.
    expect(readMs).toBeLessThan(1_500);
    expect(applied).toEqual(['traffic/0002_reserved.sql']);
    expect(retries[0]).toMatchObject({ migration: 'traffic/0002_reserved.sql', attempt: 1, code: '55P03' });
    const { rows } = await db.query<{ reserved: number }>('SELECT reserved FROM stock WHERE id = 1');
    expect(rows).toEqual([{ reserved: 0 }]);
  });

  it('gives way when the statement timeout of the locks it takes together ends them (as inventory 0003 takes its tables), and is applied later', async () => {
    retries.length = 0;
    await writeFile(
      path.join(dir, '0003_both.sql'),
      `SET LOCAL statement_timeout = 400;
       DO $$ BEGIN
         LOCK TABLE stock, ledger IN ACCESS EXCLUSIVE MODE;
       EXCEPTION WHEN query_canceled THEN
         RAISE EXCEPTION 'gave way to live traffic: %', SQLERRM USING ERRCODE = 'lock_not_available';
       END $$;
       SET LOCAL statement_timeout = DEFAULT;
       ALTER TABLE stock ADD COLUMN note text; ALTER TABLE ledger ADD COLUMN note text;`,
    );
    // stock is taken, ledger waited for: the read of stock waits behind the migration.
    const { readMs, applied } = await besideAHolder('ledger');

    expect(readMs).toBeLessThan(1_500);
    expect(applied).toEqual(['traffic/0003_both.sql']);
    expect(retries[0]).toMatchObject({ attempt: 1, code: '55P03' });
    expect(retries[0]?.error.message).toMatch(/^gave way to live traffic: canceling statement due to statement timeout/);
  });

  /**
   * A migration that takes stock, then ledger, beside a live transaction that holds ledger and
   * asks for stock: each waits for the other. The migration asks for ledger once the live
   * transaction waits (plus 100 ms), as a migration that takes its locks one after the other would.
   */
  const crossed = (name: string, first = '') =>
    writeFile(
      path.join(dir, name),
      `${first}
       LOCK TABLE stock IN ACCESS EXCLUSIVE MODE;
       DO $$ BEGIN
         FOR i IN 1..200 LOOP
           EXIT WHEN EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted AND relation = 'stock'::regclass);
           PERFORM pg_sleep(0.01);
         END LOOP;
         PERFORM pg_sleep(0.1);
       END $$;
       LOCK TABLE ledger IN ACCESS EXCLUSIVE MODE;`,
    );
  const crossingTransaction = async (migrating: () => Promise<string[]>) => {
    const livetx = await client();
    await livetx.query('BEGIN');
    await livetx.query('SELECT units FROM ledger WHERE id = 1 FOR UPDATE');
    const applied = migrating();
    await lockOn(await client(), 'stock', 'held');
    await livetx.query('UPDATE stock SET units = units - 1 WHERE id = 1');
    await livetx.query('COMMIT');
    return applied;
  };
  const units = async () => (await db.query<{ units: number }>('SELECT units FROM stock WHERE id = 1')).rows[0]?.units;

  it('gives way to a live transaction it deadlocks with before that transaction checks for the deadlock, so the transaction goes through', async () => {
    retries.length = 0;
    await crossed('0004_crossed.sql');
    const before = await units();
    // PostgreSQL's default deadlock_timeout (1 s) on both sides: the migration's 500 ms lock
    // timeout ends first. The live transaction's UPDATE would reject with 40P01 otherwise.
    expect(await crossingTransaction(() => migrate(db, source(), onRetry))).toEqual(['traffic/0004_crossed.sql']);
    expect(retries[0]).toMatchObject({ attempt: 1, code: '55P03' });
    expect(await units()).toBe((before as number) - 1);
  });

  it('tries again a migration that found itself in a deadlock first', async () => {
    retries.length = 0;
    // A migration whose deadlock check comes before its lock timeout ends: PostgreSQL aborts the
    // transaction that finds the cycle, here the migration.
    await crossed('0005_crossed.sql', "SET LOCAL deadlock_timeout = '100ms';");
    const before = await units();
    expect(await crossingTransaction(() => migrate(db, source(), onRetry))).toEqual(['traffic/0005_crossed.sql']);
    expect(retries[0]).toMatchObject({ attempt: 1, code: '40P01' });
    expect(await units()).toBe((before as number) - 1);
  });
});
