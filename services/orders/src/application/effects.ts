import type { Logger } from '@stockflow/observability';
import type { OutboxWriter } from '@stockflow/messaging';
import type { PaymentSettings } from '../domain/lifecycle.ts';
import type { Clock } from '@stockflow/platform';
import type { OrdersMetrics } from '../metrics.ts';

/** What the command handlers need besides the transaction: time and ids, payment settings, and the outbox for their events. */
export interface Effects {
  clock: Clock;
  outbox: OutboxWriter;
  payments: PaymentSettings;
  /** For the per-order lines of a flow (debug level). */
  logger?: Logger;
  metrics?: OrdersMetrics;
}

export const paymentsOn = (effects: Effects) => effects.payments.holdSeconds > 0;
