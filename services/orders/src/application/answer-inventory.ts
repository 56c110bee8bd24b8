import type { InventoryAnswer } from '@stockflow/contracts';
import { tracesByOrder, type TraceContext } from '@stockflow/observability';
import type { Transaction } from '@stockflow/db';
import { lockPending, writeAnswers } from '../db/orders.ts';
import { decideAnswers } from '../domain/lifecycle.ts';
import { announce } from './announce.ts';
import type { Effects } from './effects.ts';

/**
 * Applies the Inventory Service's answers in the caller's transaction: the PENDING orders they
 * name are locked in id order (so two instances never deadlock), decided (decideAnswers), written
 * and announced.
 */
export async function applyInventoryAnswers(
  tx: Transaction,
  answers: readonly InventoryAnswer[],
  effects: Effects,
  traces: readonly (TraceContext | undefined)[] = [],
): Promise<void> {
  const named = [...new Set(answers.filter((a) => a.event !== 'StockReleased').map((a) => a.order_id))];
  if (named.length === 0) return;
  const pending = await lockPending(tx, named);
  const decided = decideAnswers(new Map(pending.map((o) => [o.id, o])), answers, effects.payments);
  if (decided.size === 0) return;
  const moved = await writeAnswers(tx, decided);
  // OrderConfirmed / OrderCancelled continue the trace of the answer that decided the order.
  const traceOf = tracesByOrder(answers, traces);
  await announce(
    tx,
    moved.map((order) => ({ order, events: decided.get(order.id)?.announce ?? [], trace: traceOf.get(order.id) })),
    effects,
  );
}
