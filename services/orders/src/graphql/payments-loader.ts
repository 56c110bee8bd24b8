import { batchLoader } from '@stockflow/graphql';
import type { PaymentReads } from '../db/payments.ts';
import type { Payment } from '../domain/payment.ts';

/** The payments of the orders of a page, read in one query per turn of the event loop, not one per order. */
export const paymentsLoader = (orders: Pick<PaymentReads, 'paymentsOf'>): ((orderId: string) => Promise<Payment[]>) =>
  batchLoader(async (orderIds: string[]) => {
    const payments = await orders.paymentsOf(orderIds);
    return (orderId) => payments.filter((p) => p.orderId === orderId);
  });
