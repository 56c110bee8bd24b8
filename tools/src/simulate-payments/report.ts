import { EXCHANGES, type PaymentEvent, type RefundRequested } from '@stockflow/contracts';
import { ROLES, type Role } from './roles.ts';

export interface SimulatedPayment {
  paymentId: string;
  event: PaymentEvent['event'];
  amountCents: number | null;
  /** Sent this many times (a duplicate twice). */
  copies: number;
  /** The Order Service should ask its money back. */
  refundExpected: boolean;
}

export interface SimulatedOrder {
  orderId: string;
  role: Role;
  /** OrderConfirmed seen for it. */
  confirmed: boolean;
  totalCents: number | null;
  currency: string | null;
  paymentDueAt: string | null;
  payments: SimulatedPayment[];
  /** Why nothing was sent for it, when nothing was (not confirmed, say). */
  skipped?: string;
  /** OrderPaid seen for it. */
  paid: boolean;
  /** RefundRequested seen for its payments. */
  refunds: RefundRequested[];
}

export interface PaymentSimulationReport {
  /** The customer its orders were placed for. */
  customerId: string;
  orders: SimulatedOrder[];
  /** Orders by role (skipped ones included). */
  roles: Record<Role, number>;
  sent: { succeeded: number; failed: number };
  /** OrderPaid seen for its orders. */
  paid: number;
  /** The RefundRequested seen for its payments (copies: the originals stay for the payment service). */
  refunds: RefundRequested[];
  /** What it was asked to give back, by currency. */
  refundedCents: Record<string, number>;
  /** Its orders cancelled at the end because they still held stock (none when kept). */
  cancelledAtEnd: string[];
  /** What did not go as each role should: an OrderPaid or a refund missing, or one that should not have come. */
  problems: string[];
  ok: boolean;
}

export const expectPaid = (o: SimulatedOrder) => !o.skipped && o.payments.some((p) => p.event === 'PaymentSucceeded' && !p.refundExpected);
export const expectedRefunds = (o: SimulatedOrder) => (o.skipped ? [] : o.payments.filter((p) => p.refundExpected));

/**
 * What each role should have got, against what came back: adds what did not go as it should to
 * the run's `problems` (its orders never answered are marked skipped) and sums up the run.
 */
export function judge(run: {
  customerId: string;
  simulated: ReadonlyMap<string, SimulatedOrder>;
  sent: PaymentSimulationReport['sent'];
  /** Payments the broker returned: no queue took them. */
  unroutable: ReadonlySet<string>;
  refunds: RefundRequested[];
  cancelledAtEnd: string[];
  problems: string[];
}): PaymentSimulationReport {
  const { simulated, unroutable, refunds, problems } = run;
  const unanswered = [...simulated.values()].filter((o) => !o.confirmed && !o.skipped);
  for (const o of unanswered) o.skipped = 'neither confirmed nor cancelled within the run';
  if (unanswered.length > 0) {
    problems.push(
      `${unanswered.length} of its orders were neither confirmed nor cancelled within the run: is the Inventory Service running?`,
    );
  }
  for (const o of simulated.values()) {
    if (o.skipped) continue;
    const refunded = new Set(o.refunds.map((r) => r.payment_id));
    if (expectPaid(o) && !o.paid) problems.push(`${o.orderId} (${o.role}): no OrderPaid`);
    if (!expectPaid(o) && o.paid) problems.push(`${o.orderId} (${o.role}): paid, though it should not have been`);
    for (const p of o.payments) {
      if (p.refundExpected && !refunded.has(p.paymentId)) problems.push(`${o.orderId} (${o.role}): no RefundRequested for ${p.paymentId}`);
      if (!p.refundExpected && refunded.has(p.paymentId)) {
        problems.push(
          `${o.orderId} (${o.role}): ${p.paymentId} was refused (${o.refunds.find((r) => r.payment_id === p.paymentId)?.reason})`,
        );
      }
    }
  }
  if (unroutable.size > 0) {
    problems.push(
      `${unroutable.size} payments reached no queue on ${EXCHANGES.payments}: is the Order Service running (it declares payment.orders)?`,
    );
  }
  const roles = Object.fromEntries(ROLES.map((r) => [r, 0])) as Record<Role, number>;
  for (const o of simulated.values()) roles[o.role] += 1;
  const refundedCents: Record<string, number> = {};
  for (const r of refunds) refundedCents[r.currency] = (refundedCents[r.currency] ?? 0) + r.amount_cents;
  const list = [...simulated.values()];
  return {
    customerId: run.customerId,
    orders: list,
    roles,
    sent: run.sent,
    paid: list.filter((o) => o.paid).length,
    refunds,
    refundedCents,
    cancelledAtEnd: run.cancelledAtEnd,
    problems,
    ok: problems.length === 0,
  };
}
