import { z } from 'zod';
import { env, loadConfig, serviceConfigShape } from '@stockflow/platform';

/** Every option of the Order Service; the README's configuration table mirrors this. */
export const OrdersConfigSchema = z.object({
  ...serviceConfigShape,
  PORT: env.port(8001),
  /** createOrder calls a customer may make per second (sustained), and at once; 0 turns the limit off. */
  CREATE_ORDER_RATE_LIMIT: z.coerce.number({ error: 'must be a number' }).min(0, 'must be 0 (off) or more').default(5),
  CREATE_ORDER_RATE_BURST: env.positiveInt(20),
});

export type OrdersConfig = z.infer<typeof OrdersConfigSchema>;

export const loadOrdersConfig = (source: NodeJS.ProcessEnv = process.env) => loadConfig(OrdersConfigSchema, source);
