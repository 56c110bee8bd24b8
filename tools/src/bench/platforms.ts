/** The platform under test in one configuration, launched as it is deployed (the built bundles). */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { QueueType } from '@stockflow/contracts';
import { signToken } from '@stockflow/client';
import {
  createClusterVhost,
  createTestDatabase,
  ensureBrokerCluster,
  createTestVhost,
  freePort,
  profileFlags,
  repoRoot,
  runnableCommand,
  startProcess,
  startServiceProcess,
  stopChild,
  type ServiceProcess,
} from '@stockflow/testing';
import type { Configuration } from './cli.ts';
import { fixedPorts } from './ports.ts';

/**
 * What a scenario may send its load through instead of the services: the gateway, or the bare
 * forwarder that measures the floor under it (forwarder.ts).
 */
export type Front = 'gateway' | 'forwarder';

export interface Platform {
  name: string;
  /**
   * The platform's own processes by kind, for the CPU they spend (RabbitMQ and PostgreSQL are
   * counted machine-wide); a front's only when asked, for the scenarios that go through it.
   */
  servicePids(front?: Front): Record<string, number[]>;
  /** An admin token, when the platform requires one. */
  token?: string;
  ordersUrl: string;
  inventoryUrl: string;
  /**
   * The /graphql of each front the platform runs (distributed platforms, the fronts a chosen
   * scenario goes through): the gateway's over both services, the bare forwarder's.
   */
  fronts?: Partial<Record<Front, string>>;
  /** The processes whose resident memory is sampled; a front's only when asked. */
  pids(front?: Front): number[];
  /** For the backlog scenario: stop every inventory instance, and start them again. */
  stopInventory?: () => Promise<void>;
  startInventory?: () => Promise<void>;
  amqpUrl?: string;
  /** The inventory's database, where the backlog drain checks the decisions that landed. */
  inventoryDatabaseUrl?: string;
  /** The Order Service's database, where the expiry scenario makes holds fall due. */
  ordersDatabaseUrl?: string;
  /** Where the Order Service serves its metrics. */
  ordersMetricsUrl?: string;
  /** Where each running inventory instance serves its metrics. */
  inventoryMetricsUrls?: () => string[];
  close(): Promise<void>;
}

/**
 * Holds last the longest the services allow: the default 15 minutes would run out in the middle of
 * later scenarios (a full bench runs for an hour) and put thousands of cancellations into whatever
 * they were measuring. The expiry scenario makes its own holds fall due.
 */
const PAYMENT_HOLD_SECONDS = String(30 * 86_400);
const FORWARDER = path.join(import.meta.dirname, 'forwarder.ts');

async function embedded(): Promise<Platform> {
  const dir = await mkdtemp(path.join(tmpdir(), 'stockflow-bench-'));
  const [inventoryPort, ordersPort] = [await freePort(), await freePort()];
  const [command, commandArgs] = runnableCommand('stockflow');
  const child = spawn(command, commandArgs, {
    cwd: repoRoot,
    env: {
      ...process.env,
      DATA_DIR: dir,
      INVENTORY_PORT: String(inventoryPort),
      ORDERS_PORT: String(ordersPort),
      DASHBOARD_PORT: '0',
      GATEWAY_PORT: '0',
      LOG_LEVEL: 'warn',
      PAYMENT_HOLD_SECONDS,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const deadline = Date.now() + 90_000;
  while (!out.includes('Stockflow is running')) {
    if (Date.now() > deadline || child.exitCode !== null || child.signalCode !== null) {
      // Neither the process nor its data is left behind: nobody gets a handle to remove them.
      await stopChild(child, 'SIGKILL');
      await rm(dir, { recursive: true, force: true });
      throw new Error(`embedded platform did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    name: 'embedded',
    ordersUrl: `http://127.0.0.1:${ordersPort}/graphql`,
    inventoryUrl: `http://127.0.0.1:${inventoryPort}/graphql`,
    pids: () => [child.pid as number],
    servicePids: () => ({ platform: [child.pid as number] }),
    async close() {
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function distributed(
  name: string,
  instances: number,
  broker: 'node' | 'cluster',
  queueType: QueueType,
  fronts: ReadonlySet<Front>,
): Promise<Platform> {
  if (broker === 'cluster') await ensureBrokerCluster();
  // What is made so far, undone (the last first) when the start fails half-way: a process that
  // does not come up, or a run stopped meanwhile (its signal reaches the processes starting too).
  const undo: (() => Promise<unknown>)[] = [];
  const made = <T>(thing: T, undoIt: (made: T) => Promise<unknown>): T => {
    undo.push(() => undoIt(thing));
    return thing;
  };
  try {
    const vhost = made(broker === 'cluster' ? await createClusterVhost('bench') : await createTestVhost(), (v) => v.remove());
    const dbs = {
      inventory: made(await createTestDatabase('bench_inventory'), (db) => db.drop()),
      orders: made(await createTestDatabase('bench_orders'), (db) => db.drop()),
    };
    // info: the start-up line with the port is what startServiceProcess waits for.
    // As deployed: every request carries a token, checked by the service.
    const secret = randomBytes(32).toString('hex');
    const env = (url: string) => ({
      DATABASE_URL: url,
      AMQP_URL: vhost.url,
      AMQP_QUEUE_TYPE: queueType,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      // As the images run them (the Dockerfile's runtime stage): graphql-js's production build too.
      NODE_ENV: 'production',
      AUTH_JWT_SECRET: secret,
      PAYMENT_HOLD_SECONDS,
    });
    // Each instance keeps its port across the drains' restarts, so the gateway's INVENTORY_URL stays valid.
    const inventoryPorts = await fixedPorts(instances);
    const startInventory = (port: number) => startServiceProcess('inventory', { ...env(dbs.inventory.url), PORT: String(port) });
    let inventory: ServiceProcess[] = [];
    for (const port of inventoryPorts) inventory.push(made(await startInventory(port), (p) => p.stop()));
    const orders = made(await startServiceProcess('orders', env(dbs.orders.url)), (p) => p.stop());
    const ordersUrl = `http://127.0.0.1:${orders.port}/graphql`;
    const inventoryUrl = `http://127.0.0.1:${inventoryPorts[0] as number}/graphql`;
    // Only the fronts a chosen scenario goes through: an idle one would still be counted in the machine's load.
    const frontProcesses: Partial<Record<Front, ServiceProcess>> = {};
    // As deployed: the built bundle, the services' auth settings (it checks the same tokens first).
    if (fronts.has('gateway'))
      frontProcesses.gateway = made(
        await startServiceProcess('gateway', {
          PORT: '0',
          HOST: '127.0.0.1',
          LOG_LEVEL: 'info',
          NODE_ENV: 'production',
          ORDERS_URL: ordersUrl,
          INVENTORY_URL: inventoryUrl,
          AUTH_JWT_SECRET: secret,
        }),
        (p) => p.stop(),
      );
    // The floor under the gateway: the gateway's services and token secret; it checks nothing but the token.
    if (fronts.has('forwarder'))
      frontProcesses.forwarder = made(
        await startProcess('forwarder', [process.execPath, [...profileFlags(), '--import', 'tsx', FORWARDER]], {
          PORT: '0',
          NODE_ENV: 'production',
          ORDERS_URL: ordersUrl,
          INVENTORY_URL: inventoryUrl,
          AUTH_JWT_SECRET: secret,
        }),
        (p) => p.stop(),
      );
    const front = (which: Front | undefined) => (which ? frontProcesses[which] : undefined);
    let closed = false;
    const servicePids = () => ({ orders: [orders.child.pid as number], inventory: inventory.map((p) => p.child.pid as number) });
    return {
      name,
      token: await signToken(secret, { sub: 'bench', role: 'admin' }),
      ordersUrl,
      inventoryUrl,
      fronts: Object.fromEntries(Object.entries(frontProcesses).map(([which, p]) => [which, `http://127.0.0.1:${p.port}/graphql`])),
      amqpUrl: vhost.url,
      inventoryDatabaseUrl: dbs.inventory.url,
      ordersDatabaseUrl: dbs.orders.url,
      ordersMetricsUrl: `http://127.0.0.1:${orders.port}/metrics`,
      inventoryMetricsUrls: () => inventory.map((p) => `http://127.0.0.1:${p.port}/metrics`),
      pids: (which) => {
        const running = front(which);
        return [...inventory, orders, ...(running ? [running] : [])].map((p) => p.child.pid as number);
      },
      servicePids: (which) => {
        const running = front(which);
        return { ...servicePids(), ...(which && running ? { [which]: [running.child.pid as number] } : {}) };
      },
      async stopInventory() {
        await Promise.all(inventory.map((p) => p.stop()));
      },
      async startInventory() {
        if (closed) throw new Error(`${name} is closed`);
        inventory = [];
        for (const port of inventoryPorts) {
          const started = await startInventory(port);
          // Closed while it started (a stopped run): it would outlive the platform.
          if (closed) {
            await started.stop();
            throw new Error(`${name} was closed while its inventory started again`);
          }
          inventory.push(started);
        }
      },
      async close() {
        closed = true;
        // All at once: each is killed if it has not exited after STOP_GRACE_MS, so closing takes at most that long.
        await Promise.all([...Object.values(frontProcesses), ...inventory, orders].map((p) => p.stop()));
        await dbs.inventory.drop();
        await dbs.orders.drop();
        await vhost.remove();
      },
    };
  } catch (error) {
    for (const step of undo.reverse()) await step().catch(() => undefined);
    throw error;
  }
}

/** The platform of one of the bench's configurations (cli.ts says what each is), with `fronts` when it is distributed. */
export const launch = (config: Configuration, fronts: ReadonlySet<Front>): Promise<Platform> =>
  config === 'embedded'
    ? embedded()
    : config === 'cluster-1'
      ? distributed(config, 1, 'cluster', 'quorum', fronts)
      : config === 'quorum-1'
        ? distributed(config, 1, 'node', 'quorum', fronts)
        : distributed(config, config === 'distributed-2' ? 2 : 1, 'node', 'classic', fronts);
