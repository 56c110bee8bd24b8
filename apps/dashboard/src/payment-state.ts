import { expired, type Order } from './api.ts';
import { clock } from './format.ts';

/** Where an order stands with its payment; null where payment plays no part (not confirmed yet, or payments off). */
export function paymentState(o: Order): { text: string; tone: 'ok' | 'warn' | 'down' } | null {
  const refund = o.payments.some((p) => p.outcome === 'REFUND_REQUESTED');
  if (expired(o)) return { text: refund ? 'expired, late payment refunded' : 'expired', tone: 'down' };
  if (o.status === 'CONFIRMED' && o.paymentDueAt) {
    const last = o.payments.at(-1);
    const failed = last?.outcome === 'FAILED' ? `; last attempt failed (${last.reason ?? 'no reason given'})` : '';
    const unpayable = o.totalCents === null ? ': no total, a product had no price' : '';
    return { text: `awaiting payment until ${clock(o.paymentDueAt)}${unpayable}${failed}`, tone: 'warn' };
  }
  if (o.status === 'CANCELLED' && refund) return { text: 'refund requested', tone: 'warn' };
  if (o.paidAt) return { text: `paid ${clock(o.paidAt)}`, tone: 'ok' };
  return null;
}
