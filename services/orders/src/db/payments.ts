import type { Queryable } from '@stockflow/db';
import type { PaymentRecord } from '../domain/lifecycle.ts';
import { MAX_PAYMENTS_LISTED, type Payment } from '../domain/payment.ts';

/** The rows of the payments table: reads, and writes of what the application decided. */

const PAYMENT_COLUMNS = `payment_id AS "paymentId", order_id AS "orderId", amount_cents AS "amountCents", currency, outcome, reason,
  created_at AS "createdAt", updated_at AS "updatedAt"`.replace(/\s+/g, ' ');

/** The first key of the advisory locks on payment ids (the second is the id's hash): a space of their own. */
const PAYMENT_ID_LOCKS = 7_001;

/** The reads the API makes. */
export function paymentReads(db: Queryable) {
  return {
    /** The payment attempts of these orders, oldest first. */
    async paymentsOf(orderIds: readonly string[], perOrder = MAX_PAYMENTS_LISTED): Promise<Payment[]> {
      // At most `perOrder` each, read through the index: an order flooded with failed attempts
      // costs a page, not all of them.
      const { rows } = await db.query<Payment>(
        `SELECT p.* FROM unnest($1::text[]) AS o(id)
         CROSS JOIN LATERAL (
           SELECT ${PAYMENT_COLUMNS} FROM payments WHERE order_id = o.id ORDER BY created_at, payment_id LIMIT $2
         ) p`,
        [orderIds, perOrder],
      );
      return rows;
    },

    /**
     * Payments whose money is asked back, the latest asked first (of one customer's orders, when
     * given): what the payment service owes the customers, whether or not it has taken the requests yet.
     */
    async refundRequests(customerId: string | undefined, limit: number): Promise<Payment[]> {
      const { rows } = await db.query<Payment>(
        `SELECT ${PAYMENT_COLUMNS} FROM payments p
         WHERE outcome = 'REFUND_REQUESTED'
           AND ($1::text IS NULL OR EXISTS (SELECT 1 FROM orders o WHERE o.id = p.order_id AND o.customer_id = $1))
         ORDER BY updated_at DESC, payment_id DESC LIMIT $2`,
        [customerId ?? null, limit],
      );
      return rows;
    },
  };
}

export type PaymentReads = ReturnType<typeof paymentReads>;

export async function paymentById(q: Queryable, paymentId: string): Promise<Payment> {
  const { rows } = await q.query<Payment>(`SELECT ${PAYMENT_COLUMNS} FROM payments WHERE payment_id = $1`, [paymentId]);
  return rows[0] as Payment;
}

/**
 * Locks payment ids (in key order, so two batches never deadlock) for the rest of the
 * transaction: a payment for an order that does not exist has no row to lock, and two callbacks
 * with its id must still take turns.
 */
export async function lockPaymentIds(tx: Queryable, paymentIds: readonly string[]): Promise<void> {
  await tx.query(
    `SELECT pg_advisory_xact_lock(${PAYMENT_ID_LOCKS}, key)
     FROM (SELECT DISTINCT hashtext(id) AS key FROM unnest($1::text[]) AS id ORDER BY key) AS ids`,
    [paymentIds],
  );
}

/**
 * The payments recorded with these ids. Read in a statement of its own, after their locks are
 * granted, so a payment recorded by the transaction this one waited for is seen (a statement's
 * snapshot predates its lock waits).
 */
export async function paymentsByIds(tx: Queryable, paymentIds: readonly string[]): Promise<Payment[]> {
  const { rows } = await tx.query<Payment>(`SELECT ${PAYMENT_COLUMNS} FROM payments WHERE payment_id = ANY($1::text[])`, [paymentIds]);
  return rows;
}

/**
 * Records payments as decided: new ids inserted, an id recorded as FAILED overwritten (for the
 * same order only). Returns the rows written.
 */
export async function writePayments(tx: Queryable, records: Iterable<PaymentRecord>): Promise<Payment[]> {
  const rows = [...records]
    // In payment id order, so two transactions inserting the same ids never deadlock.
    .sort((a, b) => (a.payment.payment_id < b.payment.payment_id ? -1 : 1))
    .map(({ payment, outcome, reason }) => ({
      payment_id: payment.payment_id,
      order_id: payment.order_id,
      amount_cents: payment.event === 'PaymentSucceeded' ? payment.amount_cents : null,
      currency: payment.event === 'PaymentSucceeded' ? payment.currency : null,
      outcome,
      reason,
    }));
  const { rows: written } = await tx.query<Payment>(
    `INSERT INTO payments (payment_id, order_id, amount_cents, currency, outcome, reason)
     SELECT payment_id, order_id, amount_cents, currency, outcome, reason
     FROM json_to_recordset($1::json) AS x(payment_id text, order_id text, amount_cents int, currency text, outcome text, reason text)
     ON CONFLICT (payment_id) DO UPDATE SET
       amount_cents = excluded.amount_cents, currency = excluded.currency, outcome = excluded.outcome,
       reason = excluded.reason, updated_at = now()
     WHERE payments.outcome = 'FAILED' AND payments.order_id = excluded.order_id
     RETURNING ${PAYMENT_COLUMNS}`,
    [JSON.stringify(rows)],
  );
  return written;
}

/** Marks the PAID payments of these orders for refund, with why; returns them. */
export async function markForRefund(tx: Queryable, orderIds: readonly string[], reason: string): Promise<Payment[]> {
  const { rows } = await tx.query<Payment>(
    `UPDATE payments SET outcome = 'REFUND_REQUESTED', reason = $2, updated_at = now()
     WHERE order_id = ANY($1::text[]) AND outcome = 'PAID' RETURNING ${PAYMENT_COLUMNS}`,
    [orderIds, reason],
  );
  return rows;
}
