/**
 * The one seam between services and PostgreSQL. Both the real server (`pg` pool) and the embedded
 * PGlite speak this interface, so service code is written once, as explicit SQL with $n params.
 */
export interface QueryResult<Row> {
  rows: Row[];
  rowCount: number;
}

export interface Queryable {
  query<Row = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<Row>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Transaction extends Queryable {
  /**
   * Calls `callback` once the transaction has committed (never if it rolls back). It runs before
   * `transaction()` resolves and is not awaited: work that must not delay the caller (publishing
   * what the outbox just stored) starts from here.
   */
  afterCommit(callback: () => void): void;
  /** Calls `callback` once the transaction has rolled back (never if it commits); not awaited either. */
  afterRollback(callback: () => void): void;
}

export interface Database extends Queryable {
  /** Runs `fn` in one transaction: committed if it resolves, rolled back if it throws. */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /**
   * Calls `onPayload` for each NOTIFY on `channel` (sent with pg_notify in a transaction, so only
   * after its commit). Reconnects by itself; notifications sent while disconnected are missed.
   */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  /** True when a trivial query succeeds; used by /ready. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
  readonly kind: 'postgres' | 'pglite';
}
