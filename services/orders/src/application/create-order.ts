import type { TraceContext } from '@stockflow/observability';
import type { Transaction } from '@stockflow/db';
import { insertOrders, ordersByIdempotencyKey } from '../db/orders.ts';
import { ANNOUNCED, answerRepeat } from '../domain/lifecycle.ts';
import type { NewOrder, Order } from '../domain/order.ts';
import { announce } from './announce.ts';
import type { Effects } from './effects.ts';

/** A new order, with the trace of the request that created it. */
export type Intake = NewOrder & { trace: TraceContext | undefined };

const keyOf = (customerId: string, key: string) => `${customerId}\u0000${key}`;

/**
 * Stores PENDING orders and their OrderCreated in the caller's transaction. With an idempotency
 * key, a retried request is answered with the order the first one created (or refused, see
 * answerRepeat). One answer per order asked for, in the same order.
 */
export async function createOrders(tx: Transaction, orders: readonly Intake[], effects: Effects): Promise<(Order | Error)[]> {
  const rows = orders.map((o) => ({
    id: `ORD-${effects.clock.newId()}`,
    customer_id: o.customerId,
    items: o.items,
    idempotency_key: o.idempotencyKey,
  }));
  const created = await insertOrders(tx, rows);
  const traceById = new Map(rows.map((r, i) => [r.id, orders[i]?.trace]));
  await announce(
    tx,
    created.map((order) => ({ order, events: [ANNOUNCED.PENDING], trace: traceById.get(order.id) })),
    effects,
  );
  const byNewId = new Map(created.map((o) => [o.id, o]));
  // The rest repeat an idempotency key.
  const repeated = orders.filter((_, i) => !byNewId.has(rows[i]?.id as string));
  const previous = new Map(
    (
      await ordersByIdempotencyKey(
        tx,
        repeated.map((o) => ({ customerId: o.customerId, key: o.idempotencyKey as string })),
      )
    ).map((o) => [keyOf(o.customerId, o.idempotencyKey), o]),
  );
  return orders.map((order, i) => {
    const fresh = byNewId.get(rows[i]?.id as string);
    if (fresh) return fresh;
    const earlier = previous.get(keyOf(order.customerId, order.idempotencyKey as string));
    if (!earlier) return new Error('order neither created nor found by its idempotency key');
    return answerRepeat(earlier, order);
  });
}
