import type { RefundRequest, Status } from '../api.ts';
import { clock, money } from '../format.ts';

/** The latest refunds asked for, and how many of them the payment service has not taken yet. */
export function Refunds({ refunds, status }: { refunds: RefundRequest[]; status: Status | null }) {
  // How many wait is an admin's to see (with authentication on), as the queues are.
  const waiting = status?.queues && status.refundQueue ? (status.queues[status.refundQueue] ?? 0) : null;
  return (
    <section aria-labelledby="refunds-title">
      <h2 id="refunds-title">Refunds asked for</h2>
      {waiting !== null && (
        <p className={waiting > 0 ? 'warn' : 'muted'} data-field="refunds-waiting">
          {waiting > 0
            ? `${waiting} waiting in ${status?.refundQueue} until a payment service takes ${waiting === 1 ? 'it' : 'them'}.`
            : 'None waiting for the payment service.'}
        </p>
      )}
      {refunds.length === 0 ? (
        <p className="muted">No money has been asked back.</p>
      ) : (
        <ol className="orders">
          {refunds.map((r) => (
            <li key={r.paymentId} data-refund={r.paymentId}>
              {r.amountCents !== null && r.currency && <strong>{money(r.amountCents, r.currency)}</strong>} for{' '}
              <code title={r.orderId}>{r.orderId.slice(0, 12)}…</code>
              <span className="muted">
                {' '}
                ({r.reason}, {clock(r.updatedAt)})
              </span>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
