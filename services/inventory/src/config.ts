import { z } from 'zod';
import { env, loadConfig } from '@stockflow/platform';

/** Every option of the Inventory Service; the README's configuration table mirrors this. */
export const InventoryConfigSchema = z.object({
  NODE_ENV: env.nodeEnv(),
  LOG_LEVEL: env.logLevel(),
  PORT: env.port(8000),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATABASE_URL: env.url(['postgres', 'postgresql']),
  DATABASE_POOL_SIZE: env.positiveInt(10),
  AMQP_URL: env.url(['amqp', 'amqps']),
  CONSUMER_PREFETCH: env.positiveInt(200),
  CONSUMER_BATCH_SIZE: env.positiveInt(100),
  CONSUMER_LINGER_MS: z.coerce.number().int().min(0).max(1_000).default(5),
  OUTBOX_POLL_MS: env.positiveInt(500),
  OUTBOX_BATCH_SIZE: env.positiveInt(500),
  OUTBOX_RETENTION_HOURS: env.positiveInt(24),
  GRAPHIQL: z.enum(['true', 'false']).optional(),
});

export type InventoryConfig = z.infer<typeof InventoryConfigSchema>;

export const loadInventoryConfig = (source: NodeJS.ProcessEnv = process.env) => loadConfig(InventoryConfigSchema, source);

export const graphiqlEnabled = (config: InventoryConfig) =>
  config.GRAPHIQL ? config.GRAPHIQL === 'true' : config.NODE_ENV !== 'production';
