/** What the tools' integration tests share: both services started in the test's process, against the real broker and PostgreSQL. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { queues } from '@stockflow/contracts';
import { createLogger } from '@stockflow/observability';
import type { RunningService } from '@stockflow/runtime';
import { createTestDatabase, rawAmqp, serviceTestEnv, type TestDatabase } from '@stockflow/testing';
import { loadInventoryConfig, startInventoryService } from '@stockflow/inventory';
import { loadOrdersConfig, startOrdersService } from '@stockflow/orders';

const logger = createLogger({ name: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/**
 * Starts both services, each on a fresh database of its own, with authentication on (`secret`);
 * `stop` closes everything started so far, empties the queues and drops the databases, so a
 * start that fails halfway leaves nothing behind either.
 */
export function servicesUnderTest(amqpUrl: string, secret: string) {
  const dbs: TestDatabase[] = [];
  const running: RunningService[] = [];
  return {
    /** `ordersEnv` adds to (or overrides) the Order Service's settings: its payment hold, say. */
    async start(name: string, ordersEnv: Record<string, string>) {
      const [inventoryDb, ordersDb] = [await createTestDatabase(`${name}_inventory`), await createTestDatabase(`${name}_orders`)];
      dbs.push(inventoryDb, ordersDb);
      const base = (db: TestDatabase) => serviceTestEnv(db, amqpUrl, { AUTH_JWT_SECRET: secret });
      const inventory = await startInventoryService(loadInventoryConfig(base(inventoryDb)), logger);
      running.push(inventory);
      const orders = await startOrdersService(loadOrdersConfig({ ...base(ordersDb), ...ordersEnv }), logger);
      running.push(orders);
      return { ordersUrl: `http://127.0.0.1:${orders.port}/graphql`, inventoryUrl: `http://127.0.0.1:${inventory.port}/graphql` };
    },
    async stop() {
      while (running.length > 0) await running.pop()?.close();
      const amqp = await rawAmqp(amqpUrl);
      for (const q of Object.values(queues)) await amqp.connection.queuePurge(q.queue).catch(() => undefined);
      await amqp.close();
      while (dbs.length > 0) await dbs.pop()?.drop();
    },
  };
}

/**
 * Runs a tool of this directory (`simulate.ts`...) as npm run does, in a process of its own and
 * without blocking this one, whose services the tool talks to: its exit code and what it printed.
 */
export async function runTool(
  tool: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, tool), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, out };
}
