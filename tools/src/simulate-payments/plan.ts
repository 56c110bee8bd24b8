import { randomInt, randomUUID } from 'node:crypto';
import type { PaymentEvent } from '@stockflow/contracts';
import { meta } from './publisher.ts';
import type { SimulatedOrder, SimulatedPayment } from './report.ts';

/** How long after paymentDueAt a late payment is sent: past the hold by the database's clock too. */
export const LATE_BY_MS = 1_000;

/**
 * What each role sends for a confirmed order, scheduled with `at`. The payment ids are fixed when
 * it is planned, so the answers (OrderPaid, RefundRequested) can be matched as they come.
 */
export function paymentPlanner(options: {
  prefix: string;
  /** About how long after the confirmation a payment is sent (each one 0.5x to 1.5x of it). */
  delayMs: number;
  publish: (payment: PaymentEvent) => Promise<void>;
  at: (time: number, action: () => Promise<void>) => void;
}) {
  const { prefix, publish, at } = options;
  const byPayment = new Map<string, SimulatedOrder>();
  const succeeded = (order: SimulatedOrder, paymentId: string): PaymentEvent => ({
    event: 'PaymentSucceeded',
    payment_id: paymentId,
    order_id: order.orderId,
    amount_cents: order.totalCents as number,
    currency: order.currency as string,
    ...meta(),
  });
  const track = (order: SimulatedOrder, payment: SimulatedPayment) => {
    order.payments.push(payment);
    byPayment.set(payment.paymentId, order);
  };
  let failed = 0;
  const jitter = () => Math.round(options.delayMs * (0.5 + randomInt(1_001) / 1_000));

  /** Schedules what the order's role sends, `seen` being when its confirmation arrived. */
  const plan = (order: SimulatedOrder, seen: number) => {
    const id = (n: number) => `${prefix}-${order.orderId}-${n}`;
    const payAt = seen + jitter();
    switch (order.role) {
      case 'pay': {
        track(order, { paymentId: id(1), event: 'PaymentSucceeded', amountCents: order.totalCents, copies: 1, refundExpected: false });
        at(payAt, () => publish(succeeded(order, id(1))));
        break;
      }
      case 'fail': {
        // Every other failed attempt is followed by a new attempt that succeeds, the rest give up (and expire).
        failed += 1;
        const retry = failed % 2 === 1;
        track(order, { paymentId: id(1), event: 'PaymentFailed', amountCents: null, copies: 1, refundExpected: false });
        at(payAt, () =>
          publish({ event: 'PaymentFailed', payment_id: id(1), order_id: order.orderId, reason: 'card declined (simulated)', ...meta() }),
        );
        if (retry) {
          track(order, { paymentId: id(2), event: 'PaymentSucceeded', amountCents: order.totalCents, copies: 1, refundExpected: false });
          at(payAt + jitter(), () => publish(succeeded(order, id(2))));
        }
        break;
      }
      case 'duplicate': {
        // The same message twice at once, as a provider retrying a publish it did not see confirmed.
        track(order, { paymentId: id(1), event: 'PaymentSucceeded', amountCents: order.totalCents, copies: 2, refundExpected: false });
        at(payAt, async () => {
          const payment = succeeded(order, id(1));
          await Promise.all([publish(payment), publish({ ...payment, event_id: randomUUID() })]);
        });
        break;
      }
      case 'double': {
        track(order, { paymentId: id(1), event: 'PaymentSucceeded', amountCents: order.totalCents, copies: 1, refundExpected: false });
        track(order, { paymentId: id(2), event: 'PaymentSucceeded', amountCents: order.totalCents, copies: 1, refundExpected: true });
        at(payAt, () => publish(succeeded(order, id(1))));
        at(payAt + 100, () => publish(succeeded(order, id(2))));
        break;
      }
      case 'late': {
        const lateAt = Date.parse(order.paymentDueAt as string) + LATE_BY_MS;
        track(order, { paymentId: id(1), event: 'PaymentSucceeded', amountCents: order.totalCents, copies: 1, refundExpected: true });
        at(lateAt, () => publish(succeeded(order, id(1))));
        break;
      }
      case 'unpaid':
        break;
    }
  };
  /** `orderOf`: the order a planned payment is for. */
  return { plan, orderOf: (paymentId: string) => byPayment.get(paymentId) };
}
