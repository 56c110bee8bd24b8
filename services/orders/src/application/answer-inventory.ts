import { AppError } from '@stockflow/platform';
import type { BackorderFilled, InventoryAnswer } from '@stockflow/contracts';
import { tracesByOrder, type TraceContext } from '@stockflow/observability';
import type { Transaction } from '@stockflow/db';
import { lockAnswered, recordFills, writeAnswers, writeFilledLines } from '../db/orders.ts';
import { decideAnswers, decideFills } from '../domain/lifecycle.ts';
import { announce } from './announce.ts';
import type { Effects } from './effects.ts';

/**
 * Applies the Inventory Service's answers in the caller's transaction: the orders they decide
 * (PENDING) or fill are locked in id order (so two instances never deadlock), decided (decideAnswers, then decideFills
 * on the orders as the answers left them), written and announced. Each BackorderFilled is applied
 * once, by its event_id (the inbox is written in the same transaction).
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
  if (fills.length === 0) return;
  const fresh = await recordFills(tx, fills);
  const asAnswered = new Map(
    locked.map((o) => {
      const answer = decided.get(o.id);
      return [o.id, answer ? { status: answer.status, pricedItems: answer.pricedItems } : o];
    }),
  );
  // A fill not applied before, once: a repeat within the batch finds its id taken off.
  const { filled, notConfirmed } = decideFills(
    asAnswered,
    fills.filter((f) => fresh.delete(f.event_id)),
  );
  if (notConfirmed.length > 0) {
    // The fill overtook the order's StockReserved (two outbox rows of two transactions): the whole
    // batch is rolled back, the inbox rows with it, and comes back from its retry queue.
    throw new AppError('CONFLICT', `backorders filled for orders not confirmed yet: ${notConfirmed.join(', ')}; retrying`);
  }
  if (filled.size > 0) await writeFilledLines(tx, filled);
}
