import type { BackorderFilled, InventoryAnswer } from '@stockflow/contracts';
import { tracesByOrder, type TraceContext } from '@stockflow/observability';
import type { Transaction } from '@stockflow/db';
import { keepWaiting, lockAnswered, recordFills, settleWaiting, waitingFills, writeAnswers, writeFilledLines } from '../db/orders.ts';
import { notifyStatusChanges } from '../db/status-changes.ts';
import { decideAnswers, decideFills } from '../domain/lifecycle.ts';
import { awaitingStock } from '../domain/order.ts';
import { announce } from './announce.ts';
import type { Effects } from './effects.ts';

/**
 * Applies the Inventory Service's answers in the caller's transaction: the orders they decide
 * (PENDING) or fill are locked in id order (so two instances never deadlock), decided (decideAnswers, then decideFills
 * on the orders as the answers left them), written and announced. Each BackorderFilled is applied
 * once, by its event_id (the inbox is written in the same transaction); one that overtook its
 * order's StockReserved waits in the inbox and is applied in the transaction that confirms the order.
 * An order whose last backordered units arrive is notified (stockArrived) to those following it.
 */
export async function applyInventoryAnswers(
  tx: Transaction,
  answers: readonly InventoryAnswer[],
  effects: Effects,
  traces: readonly (TraceContext | undefined)[] = [],
): Promise<void> {
  const fills = answers.filter((a): a is BackorderFilled => a.event === 'BackorderFilled');
  const named = [...new Set(answers.filter((a) => a.event !== 'StockReleased').map((a) => a.order_id))];
  if (named.length === 0) return;
  const locked = await lockAnswered(
    tx,
    named,
    fills.map((f) => f.order_id),
  );
  const decided = decideAnswers(new Map(locked.filter((o) => o.status === 'PENDING').map((o) => [o.id, o])), answers, effects.payments);
  if (decided.size > 0) {
    const moved = await writeAnswers(tx, decided);
    // OrderConfirmed / OrderCancelled continue the trace of the answer that decided the order.
    const traceOf = tracesByOrder(answers, traces);
    await announce(
      tx,
      moved.map((order) => ({ order, events: decided.get(order.id)?.announce ?? [], trace: traceOf.get(order.id) })),
      effects,
    );
  }
  // Only an order reserved with backordered units can have a fill waiting for it: the other
  // reservations (nearly all) cost no read of the inbox.
  const backordered = [...decided].filter(([, d]) => d.status === 'CONFIRMED' && awaitingStock(d)).map(([id]) => id);
  if (fills.length === 0 && backordered.length === 0) return;
  const fresh = fills.length > 0 ? await recordFills(tx, fills) : new Set<string>();
  const waiting = backordered.length > 0 ? await waitingFills(tx, backordered) : [];
  const asAnswered = new Map(
    locked.map((o) => {
      const answer = decided.get(o.id);
      return [o.id, answer ? { status: answer.status, pricedItems: answer.pricedItems } : o];
    }),
  );
  const { filled, wait, settled } = decideFills(asAnswered, { waiting, received: fills, fresh });
  if (wait.length > 0) await keepWaiting(tx, wait);
  if (settled.length > 0) await settleWaiting(tx, settled);
  if (filled.size === 0) return;
  await writeFilledLines(tx, filled);
  // A client following the order waits for the moment it can ship, though its status stays.
  const stocked = locked.filter((o) => {
    const lines = filled.get(o.id);
    return lines !== undefined && !awaitingStock({ pricedItems: lines }) && awaitingStock(asAnswered.get(o.id) ?? o);
  });
  if (stocked.length > 0) {
    await notifyStatusChanges(
      tx,
      stocked.map((o) => ({ id: o.id, customerId: o.customerId, status: asAnswered.get(o.id)?.status ?? o.status, stockArrived: true })),
    );
  }
}
