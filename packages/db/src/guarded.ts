import type { CircuitBreaker } from '@stockflow/platform';
import type { Database } from './database.ts';

/**
 * The database behind a circuit breaker: while PostgreSQL is down, calls fail at once with a
 * coded UNAVAILABLE error (GraphQL shows it as "temporarily unavailable") instead of each waiting
 * for a connection timeout, and consumers know to wait rather than retry.
 */
export function guardDatabase(db: Database, breaker: CircuitBreaker): Database {
  return {
    kind: db.kind,
    query: (sql, params) => breaker.run(() => db.query(sql, params)),
    exec: (sql) => breaker.run(() => db.exec(sql)),
    transaction: (fn) => breaker.run(() => db.transaction(fn)),
    listen: (channel, onPayload) => db.listen(channel, onPayload),
    ping: () => db.ping(),
    close: () => db.close(),
  };
}
