import { routeOf, type OrderCreated, type StockRejected, type StockReserved, type OutgoingMessage } from '@stockflow/contracts';
import { AppError, type Clock } from '@stockflow/platform';
import { traceHeaders, tracesByOrder, type Logger, type Metrics, type TraceContext } from '@stockflow/observability';
import type { OutboxWriter } from '@stockflow/messaging';
import type { Queryable, Transaction } from '@stockflow/db';
import { decideOrders, type Decision, type OrderRequest, type ProductStock } from '../domain/reservation.ts';
import { answerFor } from '../messaging/answers.ts';

/** What the inventory's writes need besides the transaction: time and ids, and the outbox for its answers. */
export interface Effects {
  clock: Clock;
  outbox: OutboxWriter;
  metrics?: Metrics;
  /** For the per-order lines of a flow (debug level). */
  logger?: Logger;
}

/** Counts decisions by outcome, and rejections by their first problem, once the transaction committed. */
export function countDecisions(tx: Transaction, metrics: Metrics | undefined, decisions: Decision[]): void {
  if (!metrics || decisions.length === 0) return;
  tx.afterCommit(() => {
    for (const d of decisions) {
      metrics.decisions.inc({ outcome: d.outcome === 'RESERVED' ? 'reserved' : 'rejected' });
      if (d.outcome === 'REJECTED')
        metrics.rejections.inc({ reason: (d.lines[0]?.problem ?? 'CANCELLED_BEFORE_RESERVATION').toLowerCase() });
    }
  });
}

/** A location's available units of a product, with what allocation needs of the location. */
interface LevelRow {
  product_id: number;
  location_id: number;
  code: string;
  priority: number;
  available: number;
}

interface ExistingDecision {
  order_id: string;
  event: StockReserved | StockRejected;
  routing_key: string;
}

/**
 * Applies a batch of OrderCreated in the caller's transaction. Orders already decided are
 * answered again with the stored event. For the new ones, every product row the batch may reserve
 * from is locked in id order (so concurrent batches never deadlock and never read stale stock), the orders
 * are decided in arrival order, and the decisions, reservations and ledger rows are written in one
 * statement; every answer goes to the outbox in the same transaction.
 *
 * On a hot product every batch waits for that row's lock, so the batch rate is one over the time
 * the lock is held: the repeat lookup is made by the statement that takes the locks, and only one
 * write and the outbox insert run under them. Every round trip here also costs both processes
 * CPU on a shared machine, which is why the lookup does not have one of its own.
 */
export async function applyOrderCreatedBatch(
  tx: Transaction,
  events: readonly OrderCreated[],
  { clock, outbox, metrics, logger }: Effects,
  traces: readonly (TraceContext | undefined)[] = [],
): Promise<void> {
  // Each answer continues the trace of the OrderCreated it answers.
  const traceOf = tracesByOrder(events, traces);
  const traced = (m: OutgoingMessage, orderId: string): OutgoingMessage => ({
    ...m,
    headers: { ...m.headers, ...traceHeaders(traceOf.get(orderId)) },
  });
  const orderIds = [...new Set(events.map((e) => e.order_id))];
  const productIds = [...new Set(events.flatMap((e) => e.items.map((i) => i.product_id)))].sort((a, b) => a - b);
  // One round trip: the orders decided before, and the stock of every product the batch names.
  // A product with nothing available and no backorder room left cannot reserve a unit whatever is
  // decided before, so it is read without its lock: once a doorbuster sells out, its rejections
  // stop queueing behind one another for its row. A product that may still reserve is locked (in
  // id order) and read again under the lock, its levels too: a level locked here is read as the
  // last writer left it, as the product row is (every writer of a level holds its product's row).
  // A level a concurrent restock created at a new location while this statement waited for the
  // lock is not seen, though (its snapshot predates the row), so the levels of a product whose
  // available is not their sum are read again below. (The products of an order answered again
  // are locked too; a redelivery is rare, and the lookup would otherwise cost a round trip of its own.)
  const { rows: looked } = await tx.query<{
    existing: ExistingDecision[];
    stock: { id: number; available: number; backorder_room: number; price_cents: number | null }[];
    levels: LevelRow[];
  }>(
    `WITH existing AS (
       SELECT order_id, event, routing_key FROM order_decisions WHERE order_id = ANY($1::text[])
     ), seen AS (
       SELECT id, available, backorder_limit - backordered AS backorder_room, price_cents FROM products WHERE id = ANY($2::int[])
     ), locked AS (
       SELECT id, available, backorder_limit - backordered AS backorder_room, price_cents FROM products
       WHERE id IN (SELECT id FROM seen WHERE available > 0 OR backorder_room > 0) ORDER BY id FOR UPDATE
     ), levels AS (
       SELECT product_id, location_id, available FROM stock_levels
       WHERE product_id IN (SELECT id FROM locked) ORDER BY product_id, location_id FOR UPDATE
     ), stock AS (
       SELECT id, available, backorder_room, price_cents FROM locked
       UNION ALL
       SELECT id, available, backorder_room, price_cents FROM seen WHERE available = 0 AND backorder_room = 0
     )
     SELECT (SELECT coalesce(json_agg(existing), '[]') FROM existing) AS existing,
            (SELECT coalesce(json_agg(stock), '[]') FROM stock) AS stock,
            (SELECT coalesce(json_agg(json_build_object('product_id', v.product_id, 'location_id', v.location_id, 'code', l.code,
                                                        'priority', l.priority, 'available', v.available)), '[]')
             FROM levels v JOIN stock_locations l ON l.id = v.location_id WHERE v.available > 0) AS levels`,
    [orderIds, productIds],
  );
  const { existing, stock, levels: seenLevels } = looked[0] as (typeof looked)[number];
  const levels = await levelsUnderLock(tx, stock, seenLevels);
  const answerByOrder = new Map(existing.map((d) => [d.order_id, repeatAnswer(d)]));
  const fresh: OrderRequest[] = [];
  const freshIds = new Set<string>();
  // Orders answered again: decided earlier, or sent twice within this batch.
  const repeats: string[] = [];
  for (const event of events) {
    if (answerByOrder.has(event.order_id) || freshIds.has(event.order_id)) {
      repeats.push(event.order_id);
    } else {
      freshIds.add(event.order_id);
      fresh.push({ orderId: event.order_id, items: event.items });
    }
  }
  const now = clock.now();
  const eventIds = fresh.map(() => clock.newId());

  let newAnswers: OutgoingMessage[] = [];
  if (fresh.length > 0) {
    const stockById = new Map<number, ProductStock>(stock.map((s) => [s.id, { levels: [], backorderRoom: s.backorder_room }]));
    for (const l of levels) {
      stockById.get(l.product_id)?.levels.push({ locationId: l.location_id, code: l.code, priority: l.priority, available: l.available });
    }
    const decisions = decideOrders(fresh, stockById);
    const prices = new Map(stock.map((s) => [s.id, s.price_cents]));
    newAnswers = decisions.map((d, i) => traced(answerFor(d, { eventId: eventIds[i] as string, occurredAt: now }, prices), d.orderId));
    decisions.forEach((d, i) => answerByOrder.set(d.orderId, newAnswers[i] as OutgoingMessage));
    await writeDecisions(tx, decisions, newAnswers);
    countDecisions(tx, metrics, decisions);
    if (logger?.isLevelEnabled('debug')) {
      tx.afterCommit(() => {
        decisions.forEach((d, i) =>
          logger.debug(
            { order_id: d.orderId, event_id: eventIds[i], correlation_id: traceOf.get(d.orderId)?.traceId, outcome: d.outcome },
            'order decided',
          ),
        );
      });
    }
  }
  await outbox.enqueue(tx, [...newAnswers, ...repeats.map((id) => traced(answerByOrder.get(id) as OutgoingMessage, id))]);
}

/**
 * The levels as the last writer left them. The locking lookup's snapshot may miss a level that a
 * restock created while the lookup waited for the product's lock, and the product's available,
 * read under that lock, then exceeds the sum of the levels seen. Those products' levels are read
 * by a statement of their own, whose snapshot (READ COMMITTED) has every committed row; the locks
 * held keep them as read. Only a batch that raced such a restock pays the round trip.
 */
async function levelsUnderLock(tx: Queryable, stock: readonly { id: number; available: number }[], seen: LevelRow[]): Promise<LevelRow[]> {
  const onHand = new Map<number, number>();
  for (const l of seen) onHand.set(l.product_id, (onHand.get(l.product_id) ?? 0) + l.available);
  const stale = stock.filter((s) => s.available !== (onHand.get(s.id) ?? 0)).map((s) => s.id);
  if (stale.length === 0) return seen;
  const { rows } = await tx.query<LevelRow>(
    `SELECT v.product_id, v.location_id, l.code, l.priority, v.available
     FROM stock_levels v JOIN stock_locations l ON l.id = v.location_id
     WHERE v.product_id = ANY($1::int[]) AND v.available > 0`,
    [stale],
  );
  return [...seen.filter((l) => !stale.includes(l.product_id)), ...rows];
}

function repeatAnswer(previous: ExistingDecision): OutgoingMessage {
  return {
    ...routeOf(previous.event.event),
    messageId: previous.event.event_id ?? `${previous.order_id}:${previous.routing_key}`,
    body: previous.event,
  };
}

/**
 * Records the decisions (the inbox that makes a repeat answer the stored event) and applies the
 * reservations: products and their levels, held lines with their allocations, and ledger rows
 * (one per location a line takes from), one statement for the whole batch. The ledger rows carry
 * the product's counters after each of them, computed with a running sum in arrival order.
 */
async function writeDecisions(tx: Queryable, decisions: Decision[], answers: OutgoingMessage[]): Promise<void> {
  const decided = decisions.map((d, i) => ({
    order_id: d.orderId,
    outcome: d.outcome,
    reason: d.outcome === 'REJECTED' ? d.reason : null,
    event: answers[i]?.body,
    routing_key: answers[i]?.routingKey,
  }));
  const reserved = decisions.flatMap((d) => (d.outcome === 'RESERVED' ? d.perProduct.map((l) => ({ orderId: d.orderId, line: l })) : []));
  const lines = reserved.map(({ orderId, line }, ord) => ({
    ord,
    order_id: orderId,
    product_id: line.product_id,
    quantity: line.quantity,
    backordered: line.backordered,
  }));
  const allocations = reserved
    .flatMap(({ orderId, line }) =>
      line.allocations.map((a) => ({ order_id: orderId, product_id: line.product_id, location_id: a.locationId, quantity: a.quantity })),
    )
    .map((a, ord) => ({ ...a, ord }));
  const { rows } = await tx.query<{ recorded: number; found: boolean }>(
    `WITH recorded AS (
       INSERT INTO order_decisions (order_id, outcome, reason, event, routing_key)
       SELECT order_id, outcome, reason, event, routing_key
       FROM json_to_recordset($1::json) AS x(order_id text, outcome text, reason text, event json, routing_key text)
       ON CONFLICT (order_id) DO NOTHING
       RETURNING order_id
     ), line AS (
       -- Only the lines of orders recorded here: the held lines of an order another instance has
       -- just decided are there already, and inserting them again would fail on their key
       -- instead of as the conflict it is.
       SELECT ord, order_id, product_id, quantity, backordered
       FROM json_to_recordset($2::json) AS x(ord int, order_id text, product_id int, quantity int, backordered int)
       WHERE order_id IN (SELECT order_id FROM recorded)
     ), alloc AS (
       SELECT ord, order_id, product_id, location_id, quantity
       FROM json_to_recordset($3::json) AS x(ord int, order_id text, product_id int, location_id int, quantity int)
       WHERE order_id IN (SELECT order_id FROM recorded)
     ), totals AS (
       SELECT product_id, sum(quantity - backordered)::int AS held, sum(backordered)::int AS backordered FROM line GROUP BY product_id
     ), updated AS (
       UPDATE products p SET available = p.available - t.held, reserved = p.reserved + t.held,
                             backordered = p.backordered + t.backordered, updated_at = now()
       FROM totals t WHERE p.id = t.product_id
       RETURNING p.id, p.available + t.held AS available_before, p.reserved - t.held AS reserved_before, p.sold
     ), level_totals AS (
       SELECT product_id, location_id, sum(quantity)::int AS quantity FROM alloc GROUP BY product_id, location_id
     ), levels AS (
       UPDATE stock_levels s SET available = s.available - t.quantity, reserved = s.reserved + t.quantity
       FROM level_totals t WHERE s.product_id = t.product_id AND s.location_id = t.location_id
       RETURNING s.product_id
     ), held AS (
       -- In arrival order: seq orders the backordered lines for filling, oldest first.
       INSERT INTO reservations (order_id, product_id, quantity, backordered, status)
       SELECT order_id, product_id, quantity, backordered, 'HELD' FROM line ORDER BY ord
     ), allocated AS (
       INSERT INTO reservation_allocations (order_id, product_id, location_id, quantity)
       SELECT order_id, product_id, location_id, quantity FROM alloc
     ), moved AS (
       INSERT INTO stock_movements (product_id, location_id, kind, quantity, available_change, reserved_change, sold_change,
                                    available_after, reserved_after, sold_after, order_id)
       SELECT a.product_id, a.location_id, 'RESERVATION', a.quantity, -a.quantity, a.quantity, 0,
              u.available_before - sum(a.quantity) OVER w,
              u.reserved_before + sum(a.quantity) OVER w,
              u.sold, a.order_id
       FROM alloc a JOIN updated u ON u.id = a.product_id
       WINDOW w AS (PARTITION BY a.product_id ORDER BY a.ord)
       ORDER BY a.ord
     )
     SELECT (SELECT count(*)::int FROM recorded) AS recorded,
            (SELECT count(*)::int FROM updated) = (SELECT count(*)::int FROM totals)
              AND (SELECT count(*)::int FROM levels) = (SELECT count(*)::int FROM level_totals) AS found`,
    [JSON.stringify(decided), JSON.stringify(lines), JSON.stringify(allocations)],
  );
  if (rows[0]?.recorded !== decided.length) {
    // Another instance decided one of these orders after our lookup (the same order delivered to
    // two instances at once). Roll back; the retry finds the decision and answers it as a repeat.
    throw new AppError('CONFLICT', 'an order in this batch was decided concurrently; retrying');
  }
  // What the held lines, allocations and ledger rows refer to (their foreign keys are dropped for
  // speed: migration 0003) is what this statement moved: a product or level it did not find would
  // leave rows pointing nowhere. Never expected; the batch is rolled back and retried, then parked.
  if (!rows[0].found) throw new Error('a reservation did not move a product or stock level its rows name; nothing was written');
}
