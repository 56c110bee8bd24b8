/** What the Order Service's e2e tests share: the settings they start a service with, and the Inventory Service beside it. */
import { createLogger } from '@stockflow/observability';
import type { RunningService } from '@stockflow/runtime';
import { graphqlClient, type TestDatabase } from '@stockflow/testing';
import { loadInventoryConfig, startInventoryService } from '@stockflow/inventory';

const logger = createLogger({ name: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** Either service on `db` and the broker at `amqpUrl`, on a port the system picks; authentication has tests of its own (auth.e2e). */
export const serviceEnv = (db: TestDatabase, amqpUrl: string) => ({
  DATABASE_URL: db.url,
  AMQP_URL: amqpUrl,
  PORT: '0',
  HOST: '127.0.0.1',
  OUTBOX_POLL_MS: '100',
  AUTH_DISABLED: 'true',
});

/** The Inventory Service in this process, on `db`, and a client of its GraphQL API. */
export async function startInventory(
  db: TestDatabase,
  amqpUrl: string,
): Promise<{ service: RunningService; gql: ReturnType<typeof graphqlClient> }> {
  const service = await startInventoryService(loadInventoryConfig(serviceEnv(db, amqpUrl)), logger);
  return { service, gql: graphqlClient(`http://127.0.0.1:${service.port}/graphql`) };
}
