import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@stockflow/testing';
import { migrate } from './migrate.ts';
import { createPostgresDatabase } from './postgres.ts';
import type { Database } from './database.ts';

const servicesUnavailable = inject('servicesUnavailable');

/**
 * A migration running beside live traffic (a rolling update): a transaction of the previous
 * version holds a lock on the table the migration alters, longer than the migration's lock timeout.
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

  beforeAll(async () => {
    database = await createTestDatabase('migrate_traffic');
    db = createPostgresDatabase({ url: database.url, poolSize: 2, applicationName: 'migrate-test' });
    dir = await mkdtemp(path.join(os.tmpdir(), 'migrate-traffic-'));
    await writeFile(path.join(dir, '0001_stock.sql'), 'CREATE TABLE stock (id int PRIMARY KEY, units int NOT NULL);');
    await migrate(db, source());
    await db.query('INSERT INTO stock (id, units) VALUES (1, 10)');
  });
  afterAll(async () => {
    for (const c of live) await c.end().catch(() => undefined);
    await db?.close();
    await database?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('gives way to a transaction holding its table and is applied once that transaction ends', async () => {
    await writeFile(path.join(dir, '0002_reserved.sql'), 'ALTER TABLE stock ADD COLUMN reserved int NOT NULL DEFAULT 0;');
    // A live transaction that has read the table, and goes on for longer than the lock timeout.
    const holder = await client();
    await holder.query('BEGIN');
    await holder.query('SELECT units FROM stock WHERE id = 1');

    const migrating = migrate(db, source());
    // Another query of the live traffic, asked while the migration waits for its lock.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const reader = await client();
    const asked = Date.now();
    const read = reader.query('SELECT units FROM stock WHERE id = 1').then(() => Date.now() - asked);

    // The migration gave way (its 2 s lock timeout) rather than keep the reader queued behind it
    // until the holder ends, 6 s later.
    expect(await read).toBeLessThan(4_500);
    await new Promise((resolve) => setTimeout(resolve, 6_000 - (Date.now() - asked)));
    await holder.query('COMMIT');

    expect(await migrating).toEqual(['traffic/0002_reserved.sql']);
    const { rows } = await db.query<{ reserved: number }>('SELECT reserved FROM stock WHERE id = 1');
    expect(rows).toEqual([{ reserved: 0 }]);
  });
});
