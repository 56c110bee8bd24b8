import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import pg from 'pg';
import { Connection } from 'rabbitmq-client';

const run = promisify(execFile);

/** Where the test suite finds PostgreSQL and RabbitMQ (overridable for other machines). */
export const testServers = {
  postgresAdminUrl: process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  amqpBaseUrl: process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
};

/** In CI a missing service fails the run; elsewhere the service tests skip and say why. */
export const servicesRequired = () => process.env.CI === 'true' || process.env.REQUIRE_SERVICES === '1';

export const uniqueName = (prefix: string) => `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;

export async function postgresReachable(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: testServers.postgresAdminUrl, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (error) {
    return `PostgreSQL at ${testServers.postgresAdminUrl} is not reachable: ${(error as Error).message}`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function amqpReachable(url: string): Promise<string | undefined> {
  const connection = new Connection({ url, retryLow: 100, retryHigh: 200 });
  try {
    await connection.onConnect(3_000);
  } catch (error) {
    // onConnect closes the connection itself when it gives up.
    return `RabbitMQ at ${url} is not reachable: ${(error as Error).message}`;
  }
  await connection.close();
  return undefined;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** A service's settings in a test: its database, the run's broker, a port the system picks, a quick outbox; `settings` add or override. */
export const serviceTestEnv = (db: TestDatabase, amqpUrl: string, settings: Record<string, string> = {}): Record<string, string> => ({
  DATABASE_URL: db.url,
  AMQP_URL: amqpUrl,
  PORT: '0',
  HOST: '127.0.0.1',
  OUTBOX_POLL_MS: '100',
  ...settings,
});

/** A fresh, empty database of its own for one test file. */
export async function createTestDatabase(prefix = 'stockflow_test'): Promise<TestDatabase> {
  const name = uniqueName(prefix).toLowerCase();
  const admin = new pg.Client({ connectionString: testServers.postgresAdminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  return {
    name,
    url: withDatabase(testServers.postgresAdminUrl, name),
    async drop() {
      const client = new pg.Client({ connectionString: testServers.postgresAdminUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/**
 * A RabbitMQ virtual host of its own for one test run, so the contract's fixed queue names never
 * collide with another run or with a developer's platform. Needs rabbitmqctl (root on our machines).
 */
export async function createTestVhost(): Promise<{ vhost: string; url: string; remove(): Promise<void> }> {
  const vhost = uniqueName('stockflow-test');
  const user = decodeURIComponent(new URL(testServers.amqpBaseUrl).username || 'guest');
  await run('rabbitmqctl', ['add_vhost', vhost]);
  await run('rabbitmqctl', ['set_permissions', '-p', vhost, user, '.*', '.*', '.*']);
  // Classic queues version 2, the default from RabbitMQ 3.13 on (the broker of the containers):
  // on the 3.10 of this machine it is opt-in, and about 20% cheaper per persistent message.
  // Refused by brokers older than 3.10, which then keep version 1.
  await run('rabbitmqctl', ['set_policy', '-p', vhost, 'classic-queues-v2', '.*', '{"queue-version":2}', '--apply-to', 'queues']).catch(
    () => undefined,
  );
  const url = new URL(testServers.amqpBaseUrl);
  url.pathname = `/${encodeURIComponent(vhost)}`;
  return {
    vhost,
    url: url.toString(),
    async remove() {
      await run('rabbitmqctl', ['delete_vhost', vhost]);
    },
  };
}
