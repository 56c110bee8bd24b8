import pg from 'pg';
import type { Database, QueryResult, Transaction } from './database.ts';

// int8 (COUNT(*), SUM) as a JS number: our values stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

const MAX_PREPARED_STATEMENTS = 500;

export interface PostgresOptions {
  url: string;
  poolSize: number;
  applicationName: string;
}

export function createPostgresDatabase(options: PostgresOptions): Database {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    application_name: options.applicationName,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);

  // Parameterised statements are prepared once per connection and then only bound and run: the
  // hot paths repeat a handful of statements thousands of times a second, and parsing and
  // planning each again was a large share of the server's work. Statements are our own fixed
  // texts; the cap only guards against a caller that builds texts without bound.
  const statementNames = new Map<string, string>();
  const statement = (sql: string, params: unknown[] | undefined) => {
    if (!params) return { text: sql };
    let name = statementNames.get(sql);
    if (!name && statementNames.size < MAX_PREPARED_STATEMENTS) {
      name = `stockflow_${statementNames.size + 1}`;
      statementNames.set(sql, name);
    }
    return { name, text: sql, values: params };
  };

  const run = async <Row>(client: pg.Pool | pg.PoolClient, sql: string, params?: unknown[]): Promise<QueryResult<Row>> => {
    const result = await client.query(statement(sql, params));
    return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
  };

  return {
    kind: 'postgres',
    query: (sql, params) => run(pool, sql, params),
    exec: async (sql) => {
      await pool.query(sql);
    },
    async transaction(fn) {
      const client = await pool.connect();
      // A connection lost mid-transaction is emitted as 'error' on the checked-out client, which
      // would crash the process without a listener; the failing query reports it anyway.
      let broken = false;
      const onError = () => {
        broken = true;
      };
      client.on('error', onError);
      const committed: (() => void)[] = [];
      const rolledBack: (() => void)[] = [];
      try {
        await client.query('BEGIN');
        const tx: Transaction = {
          query: (sql, params) => run(client, sql, params),
          exec: async (sql) => {
            await client.query(sql);
          },
          afterCommit: (callback) => committed.push(callback),
          afterRollback: (callback) => rolledBack.push(callback),
        };
        const result = await fn(tx);
        await client.query('COMMIT');
        for (const callback of committed) callback();
        return result;
      } catch (error) {
        try {
          await client.query('ROLLBACK');
        } catch {
          broken = true;
        }
        // A connection lost before COMMIT rolls the transaction back all the same.
        for (const callback of rolledBack) callback();
        throw error;
      } finally {
        client.off('error', onError);
        client.release(broken);
      }
    },
    async listen(channel, onPayload) {
      let stopped = false;
      let client: pg.Client | undefined;
      const connect = async (): Promise<void> => {
        while (!stopped) {
          const next = new pg.Client({ connectionString: options.url, application_name: `${options.applicationName}-listen` });
          next.on('notification', (n) => {
            if (n.channel === channel) onPayload(n.payload ?? '');
          });
          next.on('error', () => {
            void next.end().catch(() => undefined);
            if (client === next && !stopped) void connect();
          });
          try {
            await next.connect();
            await next.query(`LISTEN "${channel.replace(/"/g, '""')}"`);
            client = next;
            return;
          } catch {
            await next.end().catch(() => undefined);
            await new Promise((resolve) => setTimeout(resolve, 1_000));
          }
        }
      };
      await connect();
      return async () => {
        stopped = true;
        await client?.end().catch(() => undefined);
      };
    },
    async ping() {
      try {
        await pool.query('SELECT 1');
        return true;
      } catch {
        return false;
      }
    },
    close: () => pool.end(),
  };
}
