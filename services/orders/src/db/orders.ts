import type { InventoryAnswer } from '@stockflow/contracts';
import { ConflictError, enqueueOutbox, NotFoundError, type Database, type Page, type Queryable } from '@stockflow/platform';
import { allowedFrom, sameLines, transitionError, type NewOrder, type Order, type OrderStatus } from '../domain/order.ts';
import { eventFor, type Clock } from '../messaging/events.ts';

/** Channel of the NOTIFY sent on every status change; every instance LISTENs to it. */
export const ORDER_STATUS_CHANNEL = 'order_status';

export interface StatusChange {
  id: string;
  customerId: string;
  status: OrderStatus;
}

const ORDER_COLUMNS = `seq, id, customer_id AS "customerId", status, reason, items, created_at AS "createdAt", updated_at AS "updatedAt"`;

export interface OrderFilter {
  ids?: string[] | undefined;
  status?: OrderStatus | undefined;
  customerId?: string | undefined;
}

/** Writes the event and the notification an order owes on entering its current status. */
async function announce(tx: Queryable, orders: Order[], clock: Clock): Promise<void> {
  if (orders.length === 0) return;
  await enqueueOutbox(
    tx,
    orders.map((o) => eventFor(o, o.status, clock)),
  );
  const changes: StatusChange[] = orders.map((o) => ({ id: o.id, customerId: o.customerId, status: o.status }));
  await tx.query(`SELECT pg_notify($1, c::text) FROM json_array_elements($2::json) AS c`, [ORDER_STATUS_CHANNEL, JSON.stringify(changes)]);
}

/** Moves one order to `to` if it is in one of the `from` statuses; undefined if not found or not. */
async function transition(
  tx: Queryable,
  id: string,
  to: OrderStatus,
  reason: string | null,
  from: OrderStatus[],
): Promise<Order | undefined> {
  const { rows } = await tx.query<Order>(
    `UPDATE orders SET status = $2, reason = COALESCE($3, reason), updated_at = now()
     WHERE id = $1 AND status = ANY($4::text[]) RETURNING ${ORDER_COLUMNS}`,
    [id, to, reason, from],
  );
  return rows[0];
}

export function ordersRepository(db: Database, clock: Clock) {
  const byId = async (q: Queryable, id: string) =>
    (await q.query<Order>(`SELECT ${ORDER_COLUMNS} FROM orders WHERE id = $1`, [id])).rows[0];

  /** For operator and customer actions: a refused transition is an error the caller sees. */
  const act = (id: string, to: OrderStatus, reason: string | null) =>
    db.transaction(async (tx) => {
      const moved = await transition(tx, id, to, reason, allowedFrom(to));
      if (!moved) {
        const current = await byId(tx, id);
        if (!current) throw new NotFoundError(`order ${id} does not exist`, { orderId: id });
        throw transitionError(current, to);
      }
      await announce(tx, [moved], clock);
      return moved;
    });

  return {
    byId: (id: string) => byId(db, id),

    async byIds(ids: readonly string[]): Promise<Order[]> {
      const { rows } = await db.query<Order>(`SELECT ${ORDER_COLUMNS} FROM orders WHERE id = ANY($1::text[])`, [ids]);
      return rows;
    },

    async list(filter: OrderFilter, page: { after: number | undefined; limit: number }): Promise<Page<Order>> {
      const params: unknown[] = [];
      const conditions: string[] = [];
      if (filter.ids) conditions.push(`id = ANY($${params.push(filter.ids)}::text[])`);
      if (filter.status) conditions.push(`status = $${params.push(filter.status)}`);
      if (filter.customerId) conditions.push(`customer_id = $${params.push(filter.customerId)}`);
      const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
      const countParams = [...params];
      const pageWhere = page.after === undefined ? where : `${where ? `${where} AND` : 'WHERE'} seq > $${params.push(page.after)}`;
      params.push(page.limit + 1);
      const [{ rows }, count] = await Promise.all([
        db.query<Order>(`SELECT ${ORDER_COLUMNS} FROM orders ${pageWhere} ORDER BY seq LIMIT $${params.length}`, params),
        db.query<{ total: number }>(`SELECT count(*)::int AS total FROM orders ${where}`, countParams),
      ]);
      return { rows: rows.slice(0, page.limit), hasNextPage: rows.length > page.limit, totalCount: count.rows[0]?.total ?? 0 };
    },

    /**
     * Stores a PENDING order and its OrderCreated in one transaction. With an idempotency key, a
     * retried request returns the order the first one created; the same key with other lines is
     * refused rather than silently answered with a different order.
     */
    create: (order: NewOrder) =>
      db.transaction(async (tx) => {
        const { rows } = await tx.query<Order>(
          `INSERT INTO orders (id, customer_id, status, items, idempotency_key) VALUES ($1, $2, 'PENDING', $3, $4)
           ON CONFLICT (customer_id, idempotency_key) DO NOTHING RETURNING ${ORDER_COLUMNS}`,
          [`ORD-${clock.newId()}`, order.customerId, JSON.stringify(order.items), order.idempotencyKey],
        );
        const created = rows[0];
        if (created) {
          await announce(tx, [created], clock);
          return created;
        }
        const { rows: existing } = await tx.query<Order>(
          `SELECT ${ORDER_COLUMNS} FROM orders WHERE customer_id = $1 AND idempotency_key = $2`,
          [order.customerId, order.idempotencyKey],
        );
        const previous = existing[0] as Order;
        if (!sameLines(previous.items, order.items)) {
          throw new ConflictError('this idempotencyKey was already used for an order with other items', { orderId: previous.id });
        }
        return previous;
      }),

    cancel: (id: string, reason: string | null) => act(id, 'CANCELLED', reason ?? 'Cancelled by request'),
    fulfil: (id: string) => act(id, 'FULFILLED', null),
  };
}

export type OrdersRepository = ReturnType<typeof ordersRepository>;

/**
 * Applies the Inventory Service's answers in one transaction, orders taken in id order so two
 * instances never deadlock. Only a PENDING order moves: a late or repeated answer (the order was
 * cancelled meanwhile, or already confirmed) changes nothing.
 */
export async function applyInventoryAnswers(tx: Queryable, answers: readonly InventoryAnswer[], clock: Clock): Promise<void> {
  const sorted = [...answers].sort((a, b) => (a.order_id < b.order_id ? -1 : a.order_id > b.order_id ? 1 : 0));
  const moved: Order[] = [];
  for (const answer of sorted) {
    // Inventory decides PENDING orders only: a rejection must never cancel a confirmed order
    // (a customer may cancel one; a stray answer may not).
    if (answer.event === 'StockReserved') {
      const order = await transition(tx, answer.order_id, 'CONFIRMED', null, ['PENDING']);
      if (order) moved.push(order);
    } else if (answer.event === 'StockRejected') {
      const order = await transition(tx, answer.order_id, 'CANCELLED', answer.reason, ['PENDING']);
      if (order) moved.push(order);
    }
    // StockReleased needs nothing here: the order was already CANCELLED when it was asked for.
  }
  await announce(tx, moved, clock);
}
