import { z } from 'zod';
import { env, loadConfig, serviceConfigShape } from '@stockflow/platform';

/** Every option of the Inventory Service; the table in docs/configuration.md mirrors this. */
export const InventoryConfigSchema = z.object({ ...serviceConfigShape, PORT: env.port(8000) });

export type InventoryConfig = z.infer<typeof InventoryConfigSchema>;

export const loadInventoryConfig = (source: NodeJS.ProcessEnv = process.env) => loadConfig(InventoryConfigSchema, source);
