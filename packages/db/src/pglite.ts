import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { Database, QueryResult, Transaction } from './database.ts';

/**
 * PostgreSQL in process for the embedded mode. PGlite has a single connection, so transactions
 * run one after another: fine for a laptop, never the place to test locking or contention.
 */
export async function createPgliteDatabase(dataDir?: string): Promise<Database> {
  // int8 as a JS number, as with `pg`: counts and ids here stay far below 2^53.
  const parsers = { 20: (value: string) => Number(value) };
  if (dataDir !== undefined) await mkdir(path.dirname(path.resolve(dataDir)), { recursive: true });
  const db = dataDir === undefined ? new PGlite({ parsers }) : new PGlite(dataDir, { parsers });
  await db.waitReady;
  const run = async <Row>(q: Pick<PGlite, 'query'>, sql: string, params?: unknown[]): Promise<QueryResult<Row>> => {
    const result = await q.query<Row>(sql, params);
    // PGlite reports affectedRows 0 for a SELECT; like pg, count the rows a statement returned.
    return { rows: result.rows, rowCount: result.fields.length > 0 ? result.rows.length : (result.affectedRows ?? 0) };
  };
  return {
    kind: 'pglite',
    query: (sql, params) => run(db, sql, params),
    exec: async (sql) => {
      await db.exec(sql);
    },
    async transaction(fn) {
      const committed: (() => void)[] = [];
      const rolledBack: (() => void)[] = [];
      const result = await db
        .transaction((tx) =>
          fn({
            query: (sql, params) => run(tx, sql, params),
            exec: async (sql) => {
              await tx.exec(sql);
            },
            afterCommit: (callback) => committed.push(callback),
            afterRollback: (callback) => rolledBack.push(callback),
          } satisfies Transaction),
        )
        .catch((error: unknown) => {
          for (const callback of rolledBack) callback();
          throw error;
        });
      for (const callback of committed) callback();
      return result;
    },
    async listen(channel, onPayload) {
      const unsubscribe = await db.listen(channel, onPayload);
      return async () => {
        if (!db.closed) await unsubscribe();
      };
    },
    ping: () => Promise.resolve(!db.closed),
    close: () => db.close(),
  };
}
