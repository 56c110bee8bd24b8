/**
 * `npm run bench`: starts the platform itself in each configuration (embedded; distributed with
 * one inventory instance; with two; on quorum queues; on the 3-node cluster), all at once, runs
 * fixed scenarios with the load generator on each in turn, round after round, and prints one
 * table, with the CPU each kind of process spent per completed order. Needs the local PostgreSQL
 * and RabbitMQ (and rabbitmqctl) for the distributed runs, and starts the 3-node cluster for
 * cluster-1. A distributed platform also runs a gateway (the built dist/gateway/main.mjs) over its
 * Order Service and an inventory instance, for the scenarios that go through it.
 *   npm run bench -- [--orders 20000] [--backlog 20000] [--only distributed-1] [--scenarios even,gateway,joined,drain]
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Connection } from 'rabbitmq-client';
import { z } from 'zod';
import { JSON_CONTENT_TYPE, routeOf, type EventName, type QueueType } from '@stockflow/contracts';
import { connectionTarget } from '@stockflow/messaging';
import { graphqlClient, signToken } from '@stockflow/client';
import { metricSum } from '@stockflow/observability';
import {
  buildRunnables,
  createClusterVhost,
  createTestDatabase,
  ensureBrokerCluster,
  createTestVhost,
  repoRoot,
  runnableCommand,
  startServiceProcess,
  type ServiceProcess,
} from '@stockflow/testing';
import { parseCli, wholeNumber } from './cli.ts';
import { auditPlatform } from './audit.ts';
import { httpPipe } from './http-pipe.ts';
import { runLoad, type LoadOptions, type LoadReport } from './load.ts';
import { percentile, summarize, type Summary } from './stats.ts';

/**
 * distributed-N: N inventory instances on the single local RabbitMQ node with classic queues (as
 * measured before quorum queues became the default); quorum-1: the same node with quorum queues;
 * cluster-1: quorum queues replicated over the 3-node cluster (tools/rabbitmq-cluster.sh), the
 * production topology. The three share this machine's two cores with everything else.
 */
const CONFIGURATIONS = ['embedded', 'distributed-1', 'distributed-2', 'quorum-1', 'cluster-1'] as const;
const SCENARIOS = ['even', 'gateway', 'hot', 'steady', 'joined', 'drain', 'drain-reservable', 'drain-spread', 'expiry'] as const;
/** Scenarios that need a broker and PostgreSQL, or the gateway process: the embedded platform has none of them. */
const DISTRIBUTED_ONLY: readonly (typeof SCENARIOS)[number][] = [
  'gateway',
  'joined',
  'drain',
  'drain-reservable',
  'drain-spread',
  'expiry',
];

const usage = `Usage: npm run bench -- [--orders N] [--backlog N] [--warmup N] [--repeat N] [--only LIST] [--scenarios LIST]
  --orders N        orders per load scenario, and holds falling due at once in expiry (default 5000;
                    the targets are stated for 20000)
  --backlog N       OrderCreated queued for each backlog-drain scenario (default 20000)
  --warmup N        orders sent to each configuration before it is measured (default 2000; 0 for none)
  --repeat N        rounds of the scenarios per configuration; the table shows each figure's median
                    and, with more than one round, its range (default 1)
  --only LIST       configurations to run, comma-separated: ${CONFIGURATIONS.join(', ')}
  --scenarios LIST  scenarios to run, comma-separated: ${SCENARIOS.join(', ')} (default all)
                    gateway: the even catalog's load (orders created, their statuses polled)
                      sent to the gateway's /graphql instead of the Order Service
                    joined: --orders requests through the gateway for existing orders with their
                      lines' products (from both services), 200 in flight; CPU per request
                    ${DISTRIBUTED_ONLY.join(', ')}:
                      distributed configurations only (skipped on embedded, which runs no gateway
                      process, broker or PostgreSQL)`;

/** A comma-separated flag naming some of `choices` (all of them when absent). */
const listOf = <T extends string>(choices: readonly [T, ...T[]]) =>
  z
    .string()
    .default(choices.join(','))
    .transform((s) => s.split(',').map((x) => x.trim()))
    .pipe(z.array(z.enum(choices)).min(1));

const args = parseCli(
  usage,
  {
    orders: { type: 'string' },
    backlog: { type: 'string' },
    warmup: { type: 'string' },
    repeat: { type: 'string' },
    only: { type: 'string' },
    scenarios: { type: 'string' },
  },
  z
    .object({
      orders: wholeNumber(1_000_000).default(5_000),
      backlog: wholeNumber(1_000_000).default(20_000),
      warmup: wholeNumber(1_000_000, { zero: true }).default(2_000),
      repeat: wholeNumber(20).default(1),
      only: listOf(CONFIGURATIONS),
      scenarios: listOf(SCENARIOS),
    })
    .refine((a) => !a.scenarios.includes('drain-spread') || a.backlog >= 1_000, {
      path: ['backlog'],
      message: 'drain-spread spreads the backlog over 1,000 products, one unit each at least: it needs 1000 or more',
    })
    .superRefine((a, ctx) => {
      // Skipped silently on embedded when some distributed configuration runs them; asked for on
      // embedded alone they would leave the table without the rows the command line asked for.
      const unrunnable = a.scenarios.filter((s) => DISTRIBUTED_ONLY.includes(s));
      if (a.only.every((c) => c === 'embedded') && unrunnable.length > 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['scenarios'],
          message: `${unrunnable.join(', ')} run on distributed configurations only, and --only names none`,
        });
      }
    }),
);

interface Platform {
  name: string;
  /**
   * The platform's own processes by kind, for the CPU they spend (RabbitMQ and PostgreSQL are
   * counted machine-wide); the gateway's only when asked, for the scenarios that go through it.
   */
  servicePids(withGateway?: boolean): Record<string, number[]>;
  /** An admin token, when the platform requires one. */
  token?: string;
  ordersUrl: string;
  inventoryUrl: string;
  /** The gateway's /graphql over both services (distributed platforms). */
  gatewayUrl?: string;
  /** The processes whose resident memory is sampled; the gateway's only when asked. */
  pids(withGateway?: boolean): number[];
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

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

/** Whether `port` can be listened on at 127.0.0.1 now. */
const bindable = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

/**
 * `count` distinct free ports for listeners that stop and start again on the same port (the
 * inventory instances, which the gateway keeps addressing). Taken below the kernel's ephemeral
 * range: a port from it could be handed to some outgoing connection while the instance is down,
 * and the restart would then fail to bind it.
 */
async function fixedPorts(count: number): Promise<number[]> {
  const range = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '');
  const ephemeralLow = Number(range.trim().split(/\s+/)[0]) || 32_768;
  const ports = new Set<number>();
  for (let tries = 0; ports.size < count && tries < 1_000; tries += 1) {
    const port = 10_000 + Math.floor(Math.random() * Math.max(1, ephemeralLow - 10_000));
    if (!ports.has(port) && (await bindable(port))) ports.add(port);
  }
  // A machine whose ephemeral range starts low: an ordinary free port, and the small risk above.
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/**
 * Holds last the longest the services allow: the default 15 minutes would run out in the middle of
 * later scenarios (a full bench runs for an hour) and put thousands of cancellations into whatever
 * they were measuring. The expiry scenario makes its own holds fall due.
 */
const PAYMENT_HOLD_SECONDS = String(30 * 86_400);

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
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`embedded platform did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    name: 'embedded',
    ordersUrl: `http://127.0.0.1:${ordersPort}/graphql`,
    inventoryUrl: `http://127.0.0.1:${inventoryPort}/graphql`,
    pids: () => [child.pid as number],
    servicePids: () => ({ platform: [child.pid as number] }),
    async close() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function distributed(name: string, instances: number, broker: 'node' | 'cluster', queueType: QueueType): Promise<Platform> {
  if (broker === 'cluster') await ensureBrokerCluster();
  const vhost = broker === 'cluster' ? await createClusterVhost('bench') : await createTestVhost();
  const dbs = { inventory: await createTestDatabase('bench_inventory'), orders: await createTestDatabase('bench_orders') };
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
    AUTH_JWT_SECRET: secret,
    PAYMENT_HOLD_SECONDS,
  });
  // Each instance keeps its port across the drains' restarts, so the gateway's INVENTORY_URL stays valid.
  const inventoryPorts = await fixedPorts(instances);
  const startInventory = (port: number) => startServiceProcess('inventory', { ...env(dbs.inventory.url), PORT: String(port) });
  let inventory: ServiceProcess[] = [];
  for (const port of inventoryPorts) inventory.push(await startInventory(port));
  const orders = await startServiceProcess('orders', env(dbs.orders.url));
  const ordersUrl = `http://127.0.0.1:${orders.port}/graphql`;
  const inventoryUrl = `http://127.0.0.1:${inventoryPorts[0] as number}/graphql`;
  // As deployed: the built bundle, the services' auth settings (it checks the same tokens first).
  const gateway = await startServiceProcess('gateway', {
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    ORDERS_URL: ordersUrl,
    INVENTORY_URL: inventoryUrl,
    AUTH_JWT_SECRET: secret,
  });
  const servicePids = () => ({ orders: [orders.child.pid as number], inventory: inventory.map((p) => p.child.pid as number) });
  return {
    name,
    token: await signToken(secret, { sub: 'bench', role: 'admin' }),
    ordersUrl,
    inventoryUrl,
    gatewayUrl: `http://127.0.0.1:${gateway.port}/graphql`,
    amqpUrl: vhost.url,
    inventoryDatabaseUrl: dbs.inventory.url,
    ordersDatabaseUrl: dbs.orders.url,
    ordersMetricsUrl: `http://127.0.0.1:${orders.port}/metrics`,
    inventoryMetricsUrls: () => inventory.map((p) => `http://127.0.0.1:${p.port}/metrics`),
    pids: (withGateway) => [...inventory, orders, ...(withGateway ? [gateway] : [])].map((p) => p.child.pid as number),
    servicePids: (withGateway) => ({ ...servicePids(), ...(withGateway ? { gateway: [gateway.child.pid as number] } : {}) }),
    async stopInventory() {
      await Promise.all(inventory.map((p) => p.stop()));
    },
    async startInventory() {
      inventory = [];
      for (const port of inventoryPorts) inventory.push(await startInventory(port));
    },
    async close() {
      await gateway.stop();
      await Promise.all([...inventory, orders].map((p) => p.stop()));
      await dbs.inventory.drop();
      await dbs.orders.drop();
      await vhost.remove();
    },
  };
}

/** CPU time (user + system) of a process so far, in ms; 0 once it is gone. */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!stat) return 0;
  // Fields after the command (which may hold spaces), 1-based: utime is the 14th, stime the 15th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1_000) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100;

/** Every process whose command is `name` (the RabbitMQ nodes' beam.smp, PostgreSQL's backends). */
async function pidsNamed(name: string): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const comm = await readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '');
    if (comm.trim() === name) out.push(Number(entry));
  }
  return out;
}

/**
 * The RabbitMQ nodes and PostgreSQL processes on the machine, for a platform that uses them (the
 * embedded one uses neither).
 */
async function machinePids(platform: Platform): Promise<Record<string, number[]>> {
  return platform.amqpUrl ? { rabbitmq: await pidsNamed('beam.smp'), postgres: await pidsNamed('postgres') } : {};
}

/**
 * Starts counting CPU, in ms by kind of process: the platform's own, every RabbitMQ node and every
 * PostgreSQL process on the machine (idle configurations cost them little), and the load
 * generator (this process). Counted per process from /proc, so it does not depend on how fast the
 * machine happens to be this hour the way a rate does. The returned function reads what each kind
 * spent since.
 */
async function cpuMeter(platform: Platform, withGateway = false): Promise<() => Promise<Record<string, number>>> {
  const kinds = async () => ({ ...platform.servicePids(withGateway), ...(await machinePids(platform)) });
  const read = async (pids: Record<string, number[]>) =>
    new Map(
      await Promise.all(
        Object.values(pids)
          .flat()
          .map(async (pid) => [pid, await cpuMs(pid)] as const),
      ),
    );
  const before = await read(await kinds());
  const self = process.cpuUsage();
  return async () => {
    const loadgen = process.cpuUsage(self);
    // Processes that started meanwhile (a restarted instance, a new PostgreSQL backend) count from zero.
    const pidsAfter = await kinds();
    const after = await read(pidsAfter);
    const spent: Record<string, number> = { loadgen: (loadgen.user + loadgen.system) / 1_000 };
    for (const [kind, pids] of Object.entries(pidsAfter)) {
      spent[kind] = pids.reduce((sum, pid) => sum + Math.max(0, (after.get(pid) ?? 0) - (before.get(pid) ?? 0)), 0);
    }
    return spent;
  };
}

/** CPU ms by kind divided by the orders completed. */
const perOrder = (cpu: Record<string, number>, orders: number) =>
  Object.fromEntries(Object.entries(cpu).map(([k, ms]) => [k, ms / Math.max(orders, 1)]));

/** Samples the resident memory of the platform's processes while `work` runs; returns the peak in MB. */
async function peakRss<T>(platform: Platform, work: () => Promise<T>, withGateway = false): Promise<[T, number]> {
  let peak = 0;
  const sample = async () => {
    for (const pid of platform.pids(withGateway)) {
      const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      peak = Math.max(peak, kb / 1024);
    }
  };
  const timer = setInterval(() => void sample(), 250);
  try {
    const result = await work();
    await sample();
    return [result, peak];
  } finally {
    clearInterval(timer);
  }
}

/** The answers a drained OrderCreated gets. */
const ANSWER_KEYS = [routeOf('StockReserved').routingKey, routeOf('StockRejected').routingKey];

const meta = () => ({ event_id: randomUUID(), occurred_at: new Date().toISOString() });

/** Publishes events where their producer would (routeOf), with confirms, a thousand in flight at a time. */
async function publishAll(amqpUrl: string, events: { event: EventName }[]): Promise<void> {
  const connection = new Connection(connectionTarget(amqpUrl));
  await connection.onConnect(5_000);
  const publisher = connection.createPublisher({ confirm: true });
  try {
    for (let i = 0; i < events.length; i += 1_000) {
      await Promise.all(
        events
          .slice(i, i + 1_000)
          .map((event) =>
            publisher.send({ ...routeOf(event.event), contentType: JSON_CONTENT_TYPE, durable: true }, JSON.stringify(event)),
          ),
      );
    }
  } finally {
    await publisher.close();
    await connection.close();
  }
}

interface DrainResult {
  /** Orders answered (reserved or rejected) per second, from the first decision to the last answer confirmed. */
  decisionsPerSecond: number;
  /** Units reserved per second while stock lasts: from the first decision to the one that took the last unit. */
  reservationsPerSecond: number;
  seconds: number;
  exact: boolean;
  answers: { reserved: number; rejected: number };
  /** CPU ms by kind of process per order answered, over the drain. */
  cpuPerOrder: Record<string, number>;
}

/** A backlog: how many products the orders spread over, and what share of them the stock covers. */
interface Backlog {
  key: 'drain' | 'drain-reservable' | 'drain-spread';
  name: string;
  products: number;
  reservable: number;
}

const BACKLOGS: Backlog[] = [
  { key: 'drain', name: '1 hot product, a quarter reservable', products: 1, reservable: 0.25 },
  { key: 'drain-reservable', name: '1 hot product, every order reservable', products: 1, reservable: 1 },
  { key: 'drain-spread', name: '1,000 products, every order reservable', products: 1_000, reservable: 1 },
];

/**
 * Queues `count` OrderCreated of one unit each, spread over the backlog's products, with every
 * inventory instance stopped, starts them again and times the drain: from the first decision
 * until every order is answered (each answer confirmed by the broker), and until the last unit is
 * reserved. Watched through the instances' metrics, so the measurement adds no consumer of its own
 * to the broker's work and no scan to the database's.
 */
async function backlogDrain(platform: Platform, count: number, backlog: Backlog): Promise<DrainResult | undefined> {
  const { amqpUrl, inventoryDatabaseUrl, inventoryMetricsUrls, stopInventory, startInventory } = platform;
  if (!amqpUrl || !inventoryDatabaseUrl || !inventoryMetricsUrls || !stopInventory || !startInventory) return undefined;
  const inventory = graphqlClient(platform.inventoryUrl, { token: platform.token });
  const perProduct = Math.floor((count * backlog.reservable) / backlog.products);
  const stock = perProduct * backlog.products;
  const sku = `BACKLOG-${Date.now()}`;
  const productIds: number[] = [];
  for (let i = 0; i < backlog.products; i += 1) {
    const created = await inventory.data<{ createProduct: { id: string } }>(
      `mutation { createProduct(input: {sku: "${sku}-${i}", name: "Backlog product ${i}", initialStock: ${perProduct}}) { id } }`,
    );
    productIds.push(Number(created.createProduct.id));
  }
  await stopInventory();
  const prefix = `BL-${Date.now()}`;
  await publishAll(
    amqpUrl,
    Array.from({ length: count }, (_, i) => ({
      event: 'OrderCreated',
      order_id: `${prefix}-${i}`,
      items: [{ product_id: productIds[i % productIds.length], quantity: 1 }],
    })),
  );

  const db = new pg.Client({ connectionString: inventoryDatabaseUrl });
  await db.connect();
  const reservedNow = async () =>
    (
      await db.query<{ reserved: number }>('SELECT coalesce(sum(reserved), 0)::int AS reserved FROM products WHERE id = ANY($1)', [
        productIds,
      ])
    ).rows[0]?.reserved ?? 0;
  try {
    // Watched through the restarted instances' own counters (they start at zero): a query of the
    // decisions table every few milliseconds scanned it whole and, late in a long benchmark, took
    // a good part of a core from the drain it was timing.
    const answered = async () => {
      let published = 0;
      for (const url of inventoryMetricsUrls()) {
        const text = await (await fetch(url)).text();
        for (const key of ANSWER_KEYS)
          published += metricSum(text, 'stockflow_messages_published_total', { routing_key: key, outcome: 'confirmed' });
      }
      return { published };
    };
    // Counted from before the instances start: a second instance still starting while the first
    // already decides would otherwise hide the first one's work. Their start (loading code,
    // connecting: about 0.5 s of CPU each) is in the figure.
    const cpuSince = await cpuMeter(platform);
    await startInventory();
    const deadline = Date.now() + 600_000;
    for (let seen = await answered(); seen.published < count; seen = await answered()) {
      if (Date.now() > deadline) throw new Error(`the backlog did not drain within 10 minutes: ${seen.published} of ${count} answered`);
      await new Promise((r) => setTimeout(r, 25));
    }
    const end = Date.now();
    const cpu = await cpuSince();
    // Timed from the decisions' own times (a batch's transaction start): polling could not see
    // the first decision while a second instance was still starting.
    const { rows } = await db.query<{ decided: number; reserved: string[]; first: number; lastReserved: number | null }>(
      `SELECT count(*)::int AS decided, coalesce(array_agg(order_id) FILTER (WHERE outcome = 'RESERVED'), '{}') AS reserved,
              extract(epoch FROM min(decided_at)) * 1000 AS first,
              extract(epoch FROM max(decided_at) FILTER (WHERE outcome = 'RESERVED')) * 1000 AS "lastReserved"
       FROM order_decisions WHERE order_id LIKE $1`,
      [`${prefix}-%`],
    );
    const { first, lastReserved } = rows[0] as { first: number; lastReserved: number | null };
    const seconds = (end - first) / 1_000;
    const { decided, reserved } = rows[0] as { decided: number; reserved: string[] };
    const result: DrainResult = {
      decisionsPerSecond: count / seconds,
      // The last reserving batch began at lastReserved; its own few ms are not in the window.
      reservationsPerSecond: stock / (((lastReserved ?? end) - first) / 1_000),
      seconds,
      exact: decided === count && reserved.length === stock && (await reservedNow()) === stock,
      answers: { reserved: reserved.length, rejected: decided - reserved.length },
      cpuPerOrder: perOrder(cpu, count),
    };
    // These orders exist only in the inventory: cancel the reserved ones, as the Order Service
    // would, so the stock they hold goes back and the next round's audit finds the books balanced.
    await publishAll(
      amqpUrl,
      reserved.map((orderId) => ({ event: 'OrderCancelled', order_id: orderId, reason: 'benchmark backlog released', ...meta() })),
    );
    const releasedBy = Date.now() + 120_000;
    for (let held = await reservedNow(); held > 0; held = await reservedNow()) {
      if (Date.now() > releasedBy) throw new Error(`the backlog's reservations were not released: ${held} still held`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return result;
  } finally {
    await db.end();
  }
}

interface ExpiryResult {
  /** Confirmed orders whose holds fell due at once. */
  holds: number;
  /** From the commit that made them due until inventory held none of their units. */
  seconds: number;
  releasedPerSecond: number;
  /** From the same commit until the Order Service had cancelled them all. */
  cancelledSeconds: number;
  /** Every one of them cancelled once, for its hold, and every unit back. */
  exact: boolean;
  /** CPU ms by kind of process per hold released. */
  cpuPerHold: Record<string, number>;
}

/**
 * A flash sale's holds all running out in the same moment: `count` orders confirmed through the
 * load generator over a catalog of their own, then one UPDATE in the orders database sets their
 * payment_due_at to now(). Timed from that commit until the inventory's reserved units of the
 * catalog are back to what they were before the orders' units (the whole path: the Order
 * Service's sweep, OrderCancelled through the outbox and the broker, the Inventory Service's
 * release). Watched by a sum over the catalog's 100 product rows in the inventory database and the
 * Order Service's expiry counter: neither scans the orders.
 */
async function expiry(platform: Platform, count: number): Promise<ExpiryResult | undefined> {
  const { ordersDatabaseUrl, inventoryDatabaseUrl, ordersMetricsUrl } = platform;
  if (!ordersDatabaseUrl || !inventoryDatabaseUrl || !ordersMetricsUrl) return undefined;
  const catalog = `EXP${Date.now().toString(36)}`;
  const made = await load(platform, { orders: count, concurrency: 200, products: 100, hot: 0, hotShare: 0, catalog, audit: false });
  if (!made.ok || made.outcomes.CONFIRMED !== made.accepted) {
    throw new Error(`expiry: the orders were not all confirmed: ${JSON.stringify(made.outcomes)}, ${made.stuck.length} stuck`);
  }
  const customerId = `loadgen-${made.runId}`;
  const orders = new pg.Client({ connectionString: ordersDatabaseUrl });
  const inventory = new pg.Client({ connectionString: inventoryDatabaseUrl });
  await orders.connect();
  await inventory.connect();
  try {
    const productIds = (await inventory.query<{ id: number }>('SELECT id FROM products WHERE sku LIKE $1', [`${catalog}-%`])).rows.map(
      (r) => r.id,
    );
    const reservedNow = async () =>
      (
        await inventory.query<{ reserved: number }>('SELECT coalesce(sum(reserved), 0)::int AS reserved FROM products WHERE id = ANY($1)', [
          productIds,
        ])
      ).rows[0]?.reserved ?? 0;
    const expiredSoFar = async () => metricSum(await (await fetch(ordersMetricsUrl)).text(), 'stockflow_payment_holds_expired_total');
    const units =
      (
        await orders.query<{ units: number }>(
          `SELECT coalesce(sum((l->>'quantity')::int), 0)::int AS units FROM orders o, json_array_elements(o.items) l
           WHERE o.customer_id = $1 AND o.status = 'CONFIRMED'`,
          [customerId],
        )
      ).rows[0]?.units ?? 0;
    const reservedBefore = (await reservedNow()) - units;
    const expiredBefore = await expiredSoFar();

    const due = await orders.query(`UPDATE orders SET payment_due_at = now() WHERE customer_id = $1 AND status = 'CONFIRMED'`, [
      customerId,
    ]);
    // From the commit: before it no sweep sees them due, and the UPDATE is the test's, not the platform's work.
    const start = Date.now();
    const cpuSince = await cpuMeter(platform);
    const holds = due.rowCount ?? 0;
    let cancelledAt: number | undefined;
    const deadline = start + 600_000;
    for (let reserved = await reservedNow(); reserved > reservedBefore; reserved = await reservedNow()) {
      if (Date.now() > deadline) throw new Error(`expiry: not released within 10 minutes: ${reserved - reservedBefore} units still held`);
      if (cancelledAt === undefined && (await expiredSoFar()) - expiredBefore >= holds) cancelledAt = Date.now();
      await new Promise((r) => setTimeout(r, 50));
    }
    const end = Date.now();
    const cpu = await cpuSince();
    const { rows } = await orders.query<{ expired: number }>(
      `SELECT count(*) FILTER (WHERE status = 'CANCELLED' AND reason LIKE 'Payment not received by %')::int AS expired
       FROM orders WHERE customer_id = $1`,
      [customerId],
    );
    const seconds = (end - start) / 1_000;
    return {
      holds,
      seconds,
      releasedPerSecond: holds / seconds,
      cancelledSeconds: ((cancelledAt ?? end) - start) / 1_000,
      exact: holds === made.accepted && rows[0]?.expired === holds && (await reservedNow()) === reservedBefore,
      cpuPerHold: perOrder(cpu, holds),
    };
  } finally {
    await orders.end();
    await inventory.end();
  }
}

interface LoadScenario {
  key: (typeof SCENARIOS)[number];
  name: string;
  options: Partial<LoadOptions>;
  /** Sent to the gateway's /graphql instead of the services (distributed platforms only). */
  viaGateway?: boolean;
}

const EVEN: Partial<LoadOptions> = { concurrency: 200, products: 1_000, hot: 0, hotShare: 0 };

const others = (orders: number, round: number): LoadScenario[] => [
  {
    key: 'hot',
    name: 'hot skew (5 hot, 90% of orders)',
    // A catalog of its own each round, so its hot products start with their 100 units (the even
    // catalog's products hold a million each, and a sold-out doorbuster is another scenario).
    options: { orders, concurrency: 200, products: 1_000, hot: 5, hotShare: 0.9, hotStock: 100, catalog: `HOT${round}` },
  },
  {
    key: 'steady',
    name: 'steady 500/s',
    options: { orders: Math.min(orders, 10_000), rate: 500, concurrency: 1_000, products: 1_000, hot: 0, hotShare: 0 },
  },
];

const scenarios = (orders: number, round: number): LoadScenario[] => {
  const even: LoadScenario = { key: 'even', name: 'even catalog (concurrency 200)', options: { ...EVEN, orders } };
  // The same orders and polls as a client of the gateway would send them.
  const gateway: LoadScenario = {
    key: 'gateway',
    name: 'even catalog via the gateway (concurrency 200)',
    options: { ...EVEN, orders },
    viaGateway: true,
  };
  // Each goes first every other round, so the machine's drift and what the first leaves to the
  // second (autovacuum, checkpoints) spread over both instead of landing on one.
  return [...(round % 2 === 1 ? [even, gateway] : [gateway, even]), ...others(orders, round)];
};

/** One load scenario against a platform, with the bench's defaults; through its gateway when asked. */
const load = (platform: Platform, options: Partial<LoadOptions>, viaGateway = false) => {
  if (viaGateway && !platform.gatewayUrl) throw new Error(`${platform.name} runs no gateway`);
  const via = viaGateway ? platform.gatewayUrl : undefined;
  return runLoad({
    ordersUrl: via ?? platform.ordersUrl,
    inventoryUrl: via ?? platform.inventoryUrl,
    orders: args.orders,
    concurrency: 200,
    products: 1_000,
    hot: 0,
    hotShare: 0,
    stock: 1_000_000,
    hotStock: 100,
    settleTimeoutMs: 300_000,
    audit: true,
    token: platform.token,
    ...options,
  });
};

/** An order with its lines' products: the lines from the Order Service, the products from the Inventory Service. */
const JOINED_QUERY = 'query($id: ID!) { order(id: $id) { id status items { productId quantity product { name availableStock } } } }';

interface JoinedResult {
  requests: number;
  /** Distinct orders asked for, round-robin. */
  orders: number;
  seconds: number;
  requestsPerSecond: number;
  /** Each request's round trip as the load generator saw it. */
  latencyMs: Summary;
  /** Answers that were not an order with every line's product, by error code. */
  errors: Record<string, number>;
  ok: boolean;
  /** CPU ms by kind of process per request, the gateway's included. */
  cpuPerRequest: Record<string, number>;
}

/** Ids of up to `count` existing orders, oldest first (read from the Order Service, not measured). */
async function existingOrders(platform: Platform, count: number): Promise<string[]> {
  const orders = graphqlClient(platform.ordersUrl, { token: platform.token });
  const ids: string[] = [];
  let after: string | null = null;
  while (ids.length < count) {
    const page: { orders: { nodes: { id: string }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } } = await orders.data(
      'query($after: String) { orders(first: 500, after: $after) { nodes { id } pageInfo { hasNextPage endCursor } } }',
      { after },
    );
    ids.push(...page.orders.nodes.map((o) => o.id));
    if (!page.orders.pageInfo.hasNextPage) break;
    after = page.orders.pageInfo.endCursor;
  }
  return ids.slice(0, count);
}

/**
 * `requests` queries through the gateway for existing orders with their lines' products, which
 * the gateway plans over both services (the order from one, the products from the other through
 * `_entities`), `concurrency` in flight over kept-alive connections, as the load scenarios send
 * theirs. Every answer must hold the order and each line's product.
 */
async function joined(platform: Platform, requests: number, concurrency = 200): Promise<JoinedResult | undefined> {
  const { gatewayUrl } = platform;
  if (!gatewayUrl) return undefined;
  let ids = await existingOrders(platform, 1_000);
  if (ids.length === 0) {
    // Without a warm-up nothing has been ordered yet: some orders to ask for, not measured.
    await load(platform, { ...EVEN, orders: 1_000, audit: false });
    ids = await existingOrders(platform, 1_000);
  }
  const pipe = httpPipe(gatewayUrl, concurrency, platform.token);
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  const fail = (code: string) => (errors[code] = (errors[code] ?? 0) + 1);
  let next = 0;
  const cpuSince = await cpuMeter(platform, true);
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) {
        const id = ids[next % ids.length] as string;
        next += 1;
        const sent = performance.now();
        try {
          const res = await pipe.post(JSON.stringify({ query: JOINED_QUERY, variables: { id } }));
          latencies.push(performance.now() - sent);
          type Answer = {
            data?: { order: { items: { product: { name: string } | null }[] } | null };
            errors?: { extensions?: { code?: string } }[];
          };
          let body: Answer = {};
          try {
            body = JSON.parse(res.body) as Answer;
          } catch {
            /* counted below by its HTTP status */
          }
          const order = body.data?.order;
          if (body.errors?.length || !order)
            fail(String(body.errors?.[0]?.extensions?.code ?? (order === null ? 'NO_ORDER' : `HTTP ${res.status}`)));
          else if (order.items.length === 0 || order.items.some((l) => typeof l.product?.name !== 'string')) fail('LINE_WITHOUT_PRODUCT');
        } catch (error) {
          fail((error as { code?: string }).code ?? 'NETWORK');
        }
      }
    }),
  );
  const seconds = (performance.now() - start) / 1_000;
  const cpu = await cpuSince();
  pipe.close();
  return {
    requests,
    orders: ids.length,
    seconds,
    requestsPerSecond: requests / seconds,
    latencyMs: summarize(latencies),
    errors,
    ok: Object.keys(errors).length === 0,
    cpuPerRequest: perOrder(cpu, requests),
  };
}

// The platform runs as it is deployed: the built bundles under plain node.
buildRunnables();
const rows: string[][] = [];
const results: unknown[] = [];
const fmt = (v: number, digits = 0) => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
/** The median of the rounds (nearest rank), with their range when there was more than one. */
const figure = (values: number[], digits = 0) => {
  const sorted = [...values].sort((a, b) => a - b);
  const median = fmt(percentile(sorted, 50), digits);
  return sorted.length > 1 ? `${median} (${fmt(sorted[0] as number, digits)}-${fmt(sorted.at(-1) as number, digits)})` : median;
};
/** Each kind's median CPU ms per order over the rounds, largest first, with their sum. */
const cpuColumn = (rounds: Record<string, number>[]) => {
  const kinds = [...new Set(rounds.flatMap((r) => Object.keys(r)))];
  const medians = kinds
    .map(
      (k) =>
        [
          k,
          percentile(
            [...rounds.map((r) => r[k] ?? 0)].sort((a, b) => a - b),
            50,
          ),
        ] as const,
    )
    .sort((a, b) => b[1] - a[1]);
  const total = medians.reduce((sum, [, ms]) => sum + ms, 0);
  return `${total.toFixed(2)}: ${medians.map(([k, ms]) => `${k} ${ms.toFixed(2)}`).join(', ')}`;
};
const started: { config: (typeof CONFIGURATIONS)[number]; platform: Platform }[] = [];
try {
  for (const config of args.only) {
    process.stderr.write(`\n== starting ${config}\n`);
    const platform =
      config === 'embedded'
        ? await embedded()
        : config === 'cluster-1'
          ? await distributed(config, 1, 'cluster', 'quorum')
          : config === 'quorum-1'
            ? await distributed(config, 1, 'node', 'quorum')
            : await distributed(config, config === 'distributed-2' ? 2 : 1, 'node', 'classic');
    started.push({ config, platform });
    if (args.warmup > 0) {
      // Measured from warm: a platform on Black Friday has been up for hours, its code compiled
      // by the JIT and its pools and connections open; a cold start is a different question.
      process.stderr.write(`   warm-up (${args.warmup} orders, not measured)...\n`);
      const warm = await load(platform, { orders: args.warmup, audit: false });
      if (!warm.ok) throw new Error(`the warm-up did not complete: ${warm.stuck.length} orders stuck`);
      // The gateway's code warmed too, by what it will be measured on.
      if (platform.gatewayUrl && args.scenarios.includes('gateway')) {
        process.stderr.write(`   gateway warm-up (${args.warmup} orders, not measured)...\n`);
        const warmGateway = await load(platform, { orders: args.warmup, audit: false }, true);
        if (!warmGateway.ok) throw new Error(`the gateway warm-up did not complete: ${warmGateway.stuck.length} orders stuck`);
      }
      if (platform.gatewayUrl && args.scenarios.includes('joined')) {
        process.stderr.write(`   joined warm-up (${args.warmup} requests, not measured)...\n`);
        const warmJoined = await joined(platform, args.warmup);
        if (!warmJoined?.ok) throw new Error(`the joined warm-up failed: ${JSON.stringify(warmJoined?.errors)}`);
      }
    }
  }
  // Every configuration is up at once (the others idle) and the rounds go through them in turn:
  // this machine's speed drifts by the minute, and a drift should spread over every scenario and
  // every configuration instead of landing on one. Configurations run one after another used to
  // differ by as much as the second inventory instance was meant to show. (The idle platforms
  // cost about 1% of the machine: outbox polls and heartbeats.)
  const chosen = (round: number) => scenarios(args.orders, round).filter((s) => args.scenarios.includes(s.key));
  const loads = new Map(
    started.map(({ config }) => [
      config,
      new Map(chosen(1).map((s) => [s.name, [] as { report: LoadReport; rss: number; cpuPerOrder: Record<string, number> }[]])),
    ]),
  );
  const chosenBacklogs = BACKLOGS.filter((b) => args.scenarios.includes(b.key));
  const drains = new Map(
    started.map(({ config }) => [config, new Map(chosenBacklogs.map((b) => [b, [] as { result: DrainResult; rss: number }[]]))]),
  );
  const expiries = new Map(started.map(({ config }) => [config, [] as { result: ExpiryResult; rss: number }[]]));
  const joins = new Map(started.map(({ config }) => [config, [] as { result: JoinedResult; rss: number }[]]));
  for (let round = 1; round <= args.repeat; round += 1) {
    // Each round starts with the next configuration. With a fixed order the one running second
    // lost every round (two inventory instances after one: 7-10% lower on the hot skew; with the
    // order swapped they came out ahead), most likely paying for the first one's autovacuum and
    // checkpoint of the tables it had just written.
    const turn = started.map((_, i) => started[(i + round - 1) % started.length] as (typeof started)[number]);
    for (const { config, platform } of turn) {
      process.stderr.write(`\n== ${config}${args.repeat > 1 ? `, round ${round}` : ''}\n`);
      // The embedded platform runs no gateway process.
      for (const scenario of chosen(round).filter((s) => !s.viaGateway || platform.gatewayUrl)) {
        process.stderr.write(`   ${scenario.name}...\n`);
        // Timed and counted without the audit (it reads every order and product); audited after.
        const cpuSince = await cpuMeter(platform, scenario.viaGateway);
        const [unaudited, rss] = await peakRss(
          platform,
          () => load(platform, { ...scenario.options, audit: false }, scenario.viaGateway),
          scenario.viaGateway,
        );
        const cpu = await cpuSince();
        const audit = await auditPlatform({ orders: platform.ordersUrl, inventory: platform.inventoryUrl, token: platform.token });
        const report = { ...unaudited, audit, ok: unaudited.ok && audit.ok };
        const { CONFIRMED, CANCELLED, FULFILLED } = report.outcomes;
        const cpuPerOrder = perOrder(cpu, CONFIRMED + CANCELLED + FULFILLED);
        results.push({
          config,
          scenario: scenario.name,
          round,
          report: { ...report, timeline: undefined },
          peakRssMb: rss,
          cpuMsPerOrder: cpuPerOrder,
        });
        loads.get(config)?.get(scenario.name)?.push({ report, rss, cpuPerOrder });
      }
      if (args.scenarios.includes('joined') && platform.gatewayUrl) {
        process.stderr.write(`   joined via the gateway, ${args.orders} requests...\n`);
        const [result, rss] = await peakRss(platform, () => joined(platform, args.orders), true);
        if (result) {
          results.push({ config, scenario: 'joined via the gateway', round, ...result, peakRssMb: rss });
          joins.get(config)?.push({ result, rss });
        }
      }
      // The embedded platform has no broker to queue a backlog in.
      for (const backlog of platform.amqpUrl ? chosenBacklogs : []) {
        process.stderr.write(`   backlog drain, ${backlog.name}...\n`);
        const [result, rss] = await peakRss(platform, () => backlogDrain(platform, args.backlog, backlog));
        if (result) {
          results.push({ config, scenario: `backlog drain, ${backlog.name}`, round, ...result, peakRssMb: rss });
          drains.get(config)?.get(backlog)?.push({ result, rss });
        }
      }
      if (args.scenarios.includes('expiry') && platform.ordersDatabaseUrl) {
        process.stderr.write(`   expiry, ${args.orders} holds due at once...\n`);
        const [result, rss] = await peakRss(platform, () => expiry(platform, args.orders));
        if (result) {
          results.push({ config, scenario: 'expiry', round, ...result, peakRssMb: rss });
          expiries.get(config)?.push({ result, rss });
        }
      }
    }
  }
  for (const { config } of started) {
    for (const [name, runs] of loads.get(config) ?? []) {
      // A gateway scenario on the embedded platform, which has none.
      if (runs.length === 0) continue;
      const failed = runs.filter((r) => !r.report.ok);
      rows.push([
        config,
        name,
        figure(runs.map((r) => r.report.acceptedPerSecond)),
        figure(runs.map((r) => r.report.completedPerSecond)),
        figure(runs.map((r) => r.report.latencyMs.p50)),
        figure(runs.map((r) => r.report.latencyMs.p99)),
        fmt(Math.max(...runs.map((r) => r.rss))),
        cpuColumn(runs.map((r) => r.cpuPerOrder)),
        failed.length === 0
          ? 'pass'
          : `FAIL (${failed.map((r) => `${r.report.stuck.length} stuck${r.report.audit?.ok === false ? ', audit' : ''}`).join('; ')})`,
      ]);
    }
    const joinedRuns = joins.get(config) ?? [];
    if (joinedRuns.length > 0) {
      const failed = joinedRuns.filter((j) => !j.result.ok);
      rows.push([
        config,
        `joined via the gateway: an order's lines with their products (${args.orders} requests over ${fmt(Math.min(...joinedRuns.map((j) => j.result.orders)))} orders, concurrency 200; latency and CPU per request)`,
        '-',
        `${figure(joinedRuns.map((j) => j.result.requestsPerSecond))} requests/s`,
        figure(joinedRuns.map((j) => j.result.latencyMs.p50)),
        figure(joinedRuns.map((j) => j.result.latencyMs.p99)),
        fmt(Math.max(...joinedRuns.map((j) => j.rss))),
        cpuColumn(joinedRuns.map((j) => j.result.cpuPerRequest)),
        failed.length === 0
          ? 'pass (every answer with its products)'
          : `FAIL (${failed
              .map((j) =>
                Object.entries(j.result.errors)
                  .map(([code, n]) => `${n} ${code}`)
                  .join(', '),
              )
              .join('; ')})`,
      ]);
    }
    for (const [backlog, drained] of drains.get(config) ?? []) {
      if (drained.length === 0) continue;
      rows.push([
        config,
        `backlog drain (${args.backlog} queued; ${backlog.name})`,
        '-',
        `${figure(drained.map((d) => d.result.decisionsPerSecond))} decisions/s; ${figure(drained.map((d) => d.result.reservationsPerSecond))} reservations/s while stock lasts`,
        '-',
        '-',
        fmt(Math.max(...drained.map((d) => d.rss))),
        cpuColumn(drained.map((d) => d.result.cpuPerOrder)),
        drained.every((d) => d.result.exact) ? 'pass (exactly its stock reserved)' : 'FAIL',
      ]);
    }
    const expired = expiries.get(config) ?? [];
    if (expired.length > 0) {
      rows.push([
        config,
        `expiry (${figure(expired.map((e) => e.result.holds))} holds due at once; CPU per hold released)`,
        '-',
        `${figure(expired.map((e) => e.result.releasedPerSecond))} holds released/s: all released in ${figure(
          expired.map((e) => e.result.seconds),
          1,
        )} s, cancelled in ${figure(
          expired.map((e) => e.result.cancelledSeconds),
          1,
        )} s`,
        '-',
        '-',
        fmt(Math.max(...expired.map((e) => e.rss))),
        cpuColumn(expired.map((e) => e.result.cpuPerHold)),
        expired.every((e) => e.result.exact) ? 'pass (each cancelled once, every unit back)' : 'FAIL',
      ]);
    }
  }
} finally {
  for (const { platform } of started) await platform.close();
}

const header = [
  'configuration',
  'scenario',
  'accepted/s',
  'completed/s',
  'p50 ms',
  'p99 ms',
  'peak RSS MB',
  'CPU ms per completed order (median)',
  'audit',
];
const table = [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
console.log(`\n${table}\n`);
await mkdir(path.join(repoRoot, 'bench-results'), { recursive: true });
await writeFile(
  path.join(repoRoot, 'bench-results', 'latest.json'),
  JSON.stringify({ at: new Date().toISOString(), args, results }, null, 2),
);
console.log('wrote bench-results/latest.json');
