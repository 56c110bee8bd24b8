import { z } from 'zod';
import { Currency } from '@stockflow/contracts';
import { env, loadConfig, serviceConfigShape } from '@stockflow/platform';

/** Every option of the Order Service; the table in docs/configuration.md mirrors this. */
export const OrdersConfigSchema = z.object({
  ...serviceConfigShape,
  PORT: env.port(8001),
  /** createOrder calls a customer may make per second (sustained), and at once; 0 turns the limit off. */
  CREATE_ORDER_RATE_LIMIT: z.coerce.number({ error: 'must be a number' }).min(0, 'must be 0 (off) or more').default(5),
  CREATE_ORDER_RATE_BURST: env.positiveInt(20),
  /** How long a CONFIRMED order holds its units awaiting payment; 0 switches payments off (taken elsewhere). */
  PAYMENT_HOLD_SECONDS: z.coerce
    .number({ error: 'must be a whole number of seconds' })
    .int('must be a whole number of seconds')
    .min(0, 'must be 0 (payments off) or more')
    .max(30 * 86_400, 'must be at most 2592000 (30 days)')
    .default(900),
  /** The shop's currency (ISO 4217): prices are in its cents, and a payment in another is refunded. */
  CURRENCY: Currency.default('EUR'),
  /** How often each instance looks for holds that ran out. */
  PAYMENT_EXPIRY_INTERVAL_MS: env.positiveInt(1_000),
});

export type OrdersConfig = z.infer<typeof OrdersConfigSchema>;

export const loadOrdersConfig = (source: NodeJS.ProcessEnv = process.env) => loadConfig(OrdersConfigSchema, source);
