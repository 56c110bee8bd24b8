import { z } from 'zod';
import { env, loadConfig, serviceConfigShape } from '@stockflow/platform';

/** Every option of the Order Service; the README's configuration table mirrors this. */
export const OrdersConfigSchema = z.object({ ...serviceConfigShape, PORT: env.port(8001) });

export type OrdersConfig = z.infer<typeof OrdersConfigSchema>;

export const loadOrdersConfig = (source: NodeJS.ProcessEnv = process.env) => loadConfig(OrdersConfigSchema, source);
