import { PGlite } from '@electric-sql/pglite';
import type { Database, Queryable, QueryResult } from './database.ts';

/**
 * PostgreSQL in process for the embedded mode. PGlite has a single connection, so transactions
 * run one after another: fine for a laptop, never the place to test locking or contention.
 */
export async function createPgliteDatabase(dataDir?: string): Promise<Database> {
  const db = dataDir === undefined ? new PGlite() : new PGlite(dataDir);
  await db.waitReady;
  const run = async <Row>(q: Pick<PGlite, 'query'>, sql: string, params?: unknown[]): Promise<QueryResult<Row>> => {
    const result = await q.query<Row>(sql, params);
    return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
  };
  return {
    kind: 'pglite',
    query: (sql, params) => run(db, sql, params),
    exec: async (sql) => {
      await db.exec(sql);
    },
    transaction: (fn) =>
      db.transaction((tx) =>
        fn({
          query: (sql, params) => run(tx, sql, params),
          exec: async (sql) => {
            await tx.exec(sql);
          },
        } satisfies Queryable),
      ),
    ping: () => Promise.resolve(!db.closed),
    close: () => db.close(),
  };
}
