import type { PaymentReads } from '../db/payments.ts';
import type { Payment } from '../domain/payment.ts';

/**
 * Collects the order ids asked for in one turn of the event loop and fetches their payments in
 * one query: a page of 100 orders costs one round trip, not 100.
 */
export function paymentsLoader(orders: Pick<PaymentReads, 'paymentsOf'>): (orderId: string) => Promise<Payment[]> {
  let queued: { ids: Set<string>; rows: Promise<Payment[]> } | undefined;
  return async (orderId) => {
    if (!queued) {
      const ids = new Set<string>();
      const rows = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        queued = undefined;
        return orders.paymentsOf([...ids]);
      });
      queued = { ids, rows };
    }
    queued.ids.add(orderId);
    return (await queued.rows).filter((p) => p.orderId === orderId);
  };
}
