/**
 * `npm run bench`: starts the platform itself in each configuration (embedded; distributed with
 * one inventory instance; with two; on quorum queues; on the 3-node cluster), all at once, runs
 * fixed scenarios with the load generator on each in turn, round after round, and prints one
 * table, with the CPU each kind of process spent per completed order. Needs the local PostgreSQL
 * and RabbitMQ (and rabbitmqctl) for the distributed runs, and starts the 3-node cluster for
 * cluster-1. A distributed platform also runs a gateway (the built dist/gateway/main.mjs) over its
 * Order Service and an inventory instance, and a bare forwarder beside it (forwarder.ts), when a
 * chosen scenario goes through them.
 *   npm run bench -- [--orders 20000] [--backlog 20000] [--locations 3] [--only distributed-1] [--scenarios even,gateway,joined,drain]
 */
import { writeSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { auditPlatform } from '@stockflow/loadgen';
import { buildRunnables, repoRoot, STOP_GRACE_MS } from '@stockflow/testing';
import { parseBenchArgs, type Configuration } from './cli.ts';
import { BACKLOGS, backlogDrain, type DrainResult } from './drain.ts';
import { expiry, type ExpiryResult } from './expiry.ts';
import { joined, type JoinedResult } from './joined.ts';
import { load, scenarios } from './load.ts';
import { cpuMeter, peakRss, perOrder, settle } from './meters.ts';
import { launch, type Front, type Platform } from './platforms.ts';
import { drainRow, expiryRow, joinedRow, loadRow, renderTable, type LoadRun } from './table.ts';

const args = parseBenchArgs();
/** Orders sent again along each path (directly, through each front) at the start of each turn (at most --warmup). */
const REWARM_ORDERS = 500;

// The platform runs as it is deployed: the built bundles under plain node.
buildRunnables();
const rows: string[][] = [];
const chosen = (round: number) => scenarios(args.orders, round, args.locations, args.scenarios);
/** The fronts the chosen scenarios go through: the joined reads go through the gateway. */
const fronts = new Set<Front>([
  ...chosen(1).flatMap((s) => (s.via ? [s.via] : [])),
  ...(args.scenarios.includes('joined') ? ['gateway' as const] : []),
]);
const results: unknown[] = [];

/**
 * Measured from warm: a platform on Black Friday has been up for hours, its code compiled by the
 * JIT and its pools and connections open; a cold start is a different question. `orders` orders
 * directly, then through each front a chosen scenario goes through, over the catalog the even
 * scenarios reuse (stocked where they will find it); the joined reads too when chosen.
 */
async function warm(platform: Platform, orders: number, what: string): Promise<void> {
  for (const front of [undefined, ...(platform.fronts ? chosen(1).flatMap((s) => (s.via ? [s.via] : [])) : [])]) {
    unlessStopped();
    const path = front ? `${front} ${what}` : what;
    process.stderr.write(`   ${path} (${orders} orders, not measured)...\n`);
    const run = await load(platform, { orders, audit: false, locations: args.locations }, front);
    if (!run.ok) throw new Error(`the ${path} did not complete: ${run.stuck.length} orders stuck`);
  }
  if (!platform.fronts) return;
  if (args.scenarios.includes('joined')) {
    unlessStopped();
    process.stderr.write(`   joined ${what} (${orders} requests, not measured)...\n`);
    const reads = await joined(platform, orders);
    if (!reads?.ok) throw new Error(`the joined ${what} failed: ${JSON.stringify(reads?.errors)}`);
  }
}

const started: { config: Configuration; platform: Platform }[] = [];
/** The platform being started, not yet in `started`. */
let launching: Promise<Platform> | undefined;
/** Each platform closed once, whether the run ends or is stopped. */
const closing = new Map<Platform, Promise<void>>();
const close = (platform: Platform): Promise<void> => {
  let closed = closing.get(platform);
  if (!closed) closing.set(platform, (closed = platform.close()));
  return closed;
};
// Stopped (Ctrl-C, a timeout's SIGTERM): what the run started goes too, as at its end, instead of
// leaving its processes, databases and vhosts behind. The signal comes twice (to the process group,
// and relayed by tsx): the first closes, the others must not kill the process meanwhile.
/** How long the platforms get to close once the run is stopped: above STOP_GRACE_MS, after which a process that hangs is killed, and the drops after it. */
const CLOSE_GIVE_UP_MS = STOP_GRACE_MS + 30_000;
/** Says which platforms failed to close: what they made is left for a person to remove. */
const reportClosing = (closed: PromiseSettledResult<void>[]) => {
  for (const c of closed)
    if (c.status === 'rejected') writeSync(2, `closing a platform failed, what it left must be removed by hand: ${String(c.reason)}\n`);
};
// A later signal, a person's rather than the relay, ends it at once if closing hangs.
let stopping: number | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => {
    const code = signal === 'SIGINT' ? 130 : 143;
    if (stopping !== undefined) {
      if (Date.now() - stopping > 2_000) process.exit(code);
      return;
    }
    stopping = Date.now();
    process.stderr.write(`\n${signal}: closing the platforms started...\n`);
    const closings = [
      ...started.map(({ platform }) => close(platform)),
      // A launch that fails undoes what it made itself: nothing of it is left to close.
      ...(launching ? [launching.then(close, () => undefined)] : []),
    ];
    void Promise.allSettled(closings).then((closed) => {
      reportClosing(closed);
      process.exit(code);
    });
    // A service that hangs in its shutdown must not hold the bench forever.
    setTimeout(() => {
      process.stderr.write(`closing took over ${CLOSE_GIVE_UP_MS / 1_000} s: exiting; what was left must be removed by hand\n`);
      process.exit(code);
    }, CLOSE_GIVE_UP_MS);
  });
/** Stopped meanwhile: nothing more is started or measured against the platforms being closed. */
const unlessStopped = () => {
  if (stopping !== undefined) throw new Error('stopped by a signal');
};
try {
  for (const config of args.only) {
    unlessStopped();
    process.stderr.write(`\n== starting ${config}\n`);
    launching = launch(config, fronts);
    const platform = await launching;
    launching = undefined;
    started.push({ config, platform });
    if (args.warmup > 0) await warm(platform, args.warmup, 'warm-up');
  }
  // Every configuration is up at once (the others idle) and the rounds go through them in turn:
  // this machine's speed drifts by the minute, and a drift should spread over every scenario and
  // every configuration instead of landing on one. Configurations run one after another used to
  // differ by as much as the second inventory instance was meant to show. (The idle platforms
  // cost about 1% of the machine: outbox polls and heartbeats.)
  const loads = new Map(started.map(({ config }) => [config, new Map(chosen(1).map((s) => [s.name, [] as LoadRun[]]))]));
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
      unlessStopped();
      process.stderr.write(`\n== ${config}${args.repeat > 1 ? `, round ${round}` : ''}\n`);
      // Warm again after idling through the others' turns: the first scenario of a turn costs the
      // services more CPU per order than the ones after it, and this narrows the difference
      // (docs/performance.md, History, "the first scenario of a turn").
      if (args.warmup > 0) await warm(platform, Math.min(args.warmup, REWARM_ORDERS), 're-warm');
      // The embedded platform runs no gateway process.
      for (const scenario of chosen(round).filter((s) => !s.via || platform.fronts)) {
        unlessStopped();
        process.stderr.write(`   ${scenario.name}...\n`);
        await settle();
        // Timed and counted without the audit (it reads every order and product); audited after.
        // Counted from the load's start, as it is timed: not its catalog read nor its connections' opening.
        let cpuSince: (() => Promise<Record<string, number>>) | undefined;
        const onStart = async () => void (cpuSince = await cpuMeter(platform, scenario.via));
        const [unaudited, rss] = await peakRss(
          platform,
          () => load(platform, { ...scenario.options, audit: false, onStart }, scenario.via),
          scenario.via,
        );
        if (!cpuSince) throw new Error(`${scenario.name} never started`);
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
      if (args.scenarios.includes('joined') && platform.fronts) {
        unlessStopped();
        process.stderr.write(`   joined via the gateway, ${args.orders} requests...\n`);
        await settle();
        const [result, rss] = await peakRss(platform, () => joined(platform, args.orders), 'gateway');
        if (result) {
          results.push({ config, scenario: 'joined via the gateway', round, ...result, peakRssMb: rss });
          joins.get(config)?.push({ result, rss });
        }
      }
      // The embedded platform has no broker to queue a backlog in.
      for (const backlog of platform.amqpUrl ? chosenBacklogs : []) {
        unlessStopped();
        process.stderr.write(`   backlog drain, ${backlog.name}...\n`);
        const [result, rss] = await peakRss(platform, () => backlogDrain(platform, args.backlog, backlog));
        if (result) {
          results.push({ config, scenario: `backlog drain, ${backlog.name}`, round, ...result, peakRssMb: rss });
          drains.get(config)?.get(backlog)?.push({ result, rss });
        }
      }
      if (args.scenarios.includes('expiry') && platform.ordersDatabaseUrl) {
        unlessStopped();
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
      rows.push(loadRow(config, name, runs));
    }
    const joinedRuns = joins.get(config) ?? [];
    if (joinedRuns.length > 0) rows.push(joinedRow(config, args.orders, joinedRuns));
    for (const [backlog, drained] of drains.get(config) ?? []) {
      if (drained.length === 0) continue;
      rows.push(drainRow(config, args.backlog, backlog, drained));
    }
    const expired = expiries.get(config) ?? [];
    if (expired.length > 0) rows.push(expiryRow(config, expired));
  }
} catch (error) {
  if (stopping === undefined) throw error;
  // Stopped: a scenario cut short by the platforms' closing is no failure to report.
} finally {
  // Every one closed, even when closing another fails (reported here, or by the signal's handler once stopped).
  const closed = await Promise.allSettled(started.map(({ platform }) => close(platform)));
  if (stopping === undefined) reportClosing(closed);
}
// Stopped: no table of a run cut short; the signal's handler exits with its code (130, 143) once
// what it closes is closed.
if (stopping !== undefined) await new Promise(() => undefined);

console.log(`\n${renderTable(rows)}\n`);
await mkdir(path.join(repoRoot, 'bench-results'), { recursive: true });
await writeFile(
  path.join(repoRoot, 'bench-results', 'latest.json'),
  JSON.stringify({ at: new Date().toISOString(), args, results }, null, 2),
);
console.log('wrote bench-results/latest.json');
