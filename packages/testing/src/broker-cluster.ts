import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { amqpReachable, uniqueName } from './services.ts';

const run = promisify(execFile);

/**
 * The 3-node RabbitMQ cluster of tools/rabbitmq-cluster.sh, beside the default node on 5672: for
 * the tests that lose a broker node (quorum queues, clients failing over between node URLs).
 * Needs root, as the script and rabbitmqctl do on our machines.
 */
export interface BrokerNode {
  name: string;
  port: number;
}

export const brokerNodes: BrokerNode[] = [
  { name: 'stockflow1@localhost', port: 5681 },
  { name: 'stockflow2@localhost', port: 5682 },
  { name: 'stockflow3@localhost', port: 5683 },
];

const clusterScript = fileURLToPath(new URL('../../../tools/rabbitmq-cluster.sh', import.meta.url));
/** Where the script keeps each node's data and pid file (the script reads the same variable). */
const clusterBase = () => process.env.STOCKFLOW_RABBIT_BASE ?? '/var/tmp/stockflow-rabbitmq';
const shortName = (node: BrokerNode) => node.name.split('@')[0] as string;
const pidFile = (node: BrokerNode) => `${clusterBase()}/${shortName(node)}/${shortName(node)}.pid`;

const nodeUrl = (node: BrokerNode, vhost?: string) =>
  `amqp://guest:guest@127.0.0.1:${node.port}` + (vhost === undefined ? '' : `/${encodeURIComponent(vhost)}`);

function brokerNode(name: string): BrokerNode {
  const node = brokerNodes.find((n) => n.name === name || shortName(n) === name);
  if (!node) throw new Error(`${name} is not a node of the test cluster (${brokerNodes.map((n) => n.name).join(', ')})`);
  return node;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * rabbitmqctl against one node. `timeout` ends the whole CLI (the wrapper, su and its Erlang VM)
 * when it hangs; the CLI allows 11 at once on a machine (its distribution ports 35672-35682).
 */
async function rabbitmqctl(node: string, args: string[], seconds = 60): Promise<string> {
  const { stdout } = await run('timeout', ['--kill-after=5', String(seconds), 'rabbitmqctl', '-q', '-n', node, ...args], {
    timeout: (seconds + 10) * 1_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

/** The node could not be asked (69: unreachable, 75: CLI timeout, 124/137: ended by `timeout`). */
const unreachable = (error: unknown) => {
  const { code, signal } = error as { code?: number | string; signal?: string | null };
  return Boolean(signal) || [69, 75, 124, 137].includes(Number(code));
};

/** rabbitmqctl against the first node that answers, those accepting AMQP connections first. */
async function rabbitmqctlAny(args: string[], seconds = 60): Promise<string> {
  const open = await Promise.all(brokerNodes.map((n) => portOpen(n.port)));
  const order = [...brokerNodes.filter((_, i) => open[i]), ...brokerNodes.filter((_, i) => !open[i])];
  let last: unknown;
  for (const node of order) {
    try {
      return await rabbitmqctl(node.name, args, seconds);
    } catch (error) {
      if (!unreachable(error)) throw error;
      last = error;
    }
  }
  throw new Error(`no node of the test cluster answered rabbitmqctl ${args.join(' ')}: ${(last as Error).message}`);
}

type Row = Record<string, unknown>;
const jsonRows = (stdout: string): Row[] => (stdout.trim() ? (JSON.parse(stdout) as Row[]) : []);

let starting: Promise<void> | undefined;

/** Starts the cluster with the script when any node is down; resolves when all three run clustered. */
export async function ensureBrokerCluster(): Promise<void> {
  starting ??= (async () => {
    try {
      const open = await Promise.all(brokerNodes.map((n) => portOpen(n.port)));
      if (open.every(Boolean)) {
        const status = JSON.parse(await rabbitmqctlAny(['cluster_status', '--formatter', 'json'], 30)) as { running_nodes?: string[] };
        if (brokerNodes.every((n) => status.running_nodes?.includes(n.name))) return;
      }
    } catch {
      // The script finds out what is wrong and mends it.
    }
    await run(clusterScript, ['start'], { timeout: 15 * 60_000 });
  })().finally(() => {
    starting = undefined;
  });
  return starting;
}

/** undefined when all three nodes accept AMQP connections, else why not. */
export async function brokerClusterReachable(): Promise<string | undefined> {
  const reasons = await Promise.all(brokerNodes.map((n) => amqpReachable(nodeUrl(n))));
  const down = reasons.filter((r): r is string => r !== undefined);
  return down.length ? `the test RabbitMQ cluster (tools/rabbitmq-cluster.sh start) is not reachable: ${down.join('; ')}` : undefined;
}

/**
 * A vhost of its own on the cluster. `url` lists the three nodes' URLs with that vhost,
 * comma-separated (as AMQP_URL takes them), `urls` the same as an array.
 */
export async function createClusterVhost(
  prefix = 'stockflow-cluster',
): Promise<{ vhost: string; url: string; urls: string[]; remove(): Promise<void> }> {
  const vhost = uniqueName(prefix);
  await rabbitmqctlAny(['add_vhost', vhost]);
  await rabbitmqctlAny(['set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*']);
  const urls = brokerNodes.map((n) => nodeUrl(n, vhost));
  return {
    vhost,
    url: urls.join(','),
    urls,
    async remove() {
      await rabbitmqctlAny(['delete_vhost', vhost]);
    },
  };
}

async function isNodeVm(pid: number, node: BrokerNode): Promise<boolean> {
  try {
    const environ = await readFile(`/proc/${pid}/environ`, 'utf8');
    return environ.split('\0').includes(`RABBITMQ_NODENAME=${node.name}`);
  } catch {
    return false;
  }
}

/** The pid of the node's Erlang VM: from its pid file, else the process listening on its AMQP port. */
async function nodePid(node: BrokerNode): Promise<number | undefined> {
  const fromFile = Number((await readFile(pidFile(node), 'utf8').catch(() => '')).trim());
  if (fromFile > 0 && (await isNodeVm(fromFile, node))) return fromFile;
  const { stdout } = await run('ss', ['-Hltnp', `sport = :${node.port}`], { timeout: 10_000 }).catch(() => ({ stdout: '' }));
  for (const match of stdout.matchAll(/pid=(\d+)/g)) {
    const pid = Number(match[1]);
    if (await isNodeVm(pid, node)) return pid;
  }
  return undefined;
}

/** The process still runs: neither gone nor a zombie (this machine's init takes about 1 s to reap one). */
async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat !== undefined && !/^\S+ \(.*\) [ZX]/s.test(stat);
}

/** kill -9 of the node's Erlang VM; resolves once the process is gone (at once when it did not run). */
export async function killNode(name: string): Promise<void> {
  const node = brokerNode(name);
  const pid = await nodePid(node);
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
  const deadline = Date.now() + 15_000;
  while (await alive(pid)) {
    if (Date.now() > deadline) throw new Error(`${node.name} (pid ${pid}) is still there 15 s after kill -9`);
    await sleep(50);
  }
}

/** Graceful stop of one node (rabbitmqctl -n NAME stop), for rolling restarts; resolves once its VM is gone. */
export async function stopNode(name: string): Promise<void> {
  const node = brokerNode(name);
  await rabbitmqctl(node.name, ['stop', '--idempotent', pidFile(node)], 120);
}

/** Starts one node again (with the script) and resolves when it runs and is back in the cluster. */
export async function startNode(name: string): Promise<void> {
  const node = brokerNode(name);
  await run(clusterScript, ['start', shortName(node)], { timeout: 10 * 60_000 });
}

/**
 * The node leading a queue: a quorum queue's leader (right after its leader was lost this may
 * still name the old one until the election is over), a classic queue's node.
 */
export async function queueLeader(vhost: string, queue: string): Promise<string> {
  const rows = jsonRows(await rabbitmqctlAny(['list_queues', '-p', vhost, 'name', 'type', 'leader', '--formatter', 'json']));
  const row = rows.find((r) => r.name === queue);
  if (!row) throw new Error(`no queue ${queue} in vhost ${vhost}`);
  if (typeof row.leader === 'string' && row.leader) return row.leader;
  // A classic queue has no leader column: ask each running node for the queues it hosts.
  for (const node of brokerNodes) {
    if (!(await portOpen(node.port))) continue;
    const local = jsonRows(
      await rabbitmqctl(node.name, ['list_queues', '-p', vhost, '--local', 'name', '--formatter', 'json']).catch(() => ''),
    );
    if (local.some((r) => r.name === queue)) return node.name;
  }
  throw new Error(`no running node hosts queue ${queue} of vhost ${vhost}`);
}

/**
 * Queues of a vhost: name, type (classic|quorum|stream), messages. The counts are the broker's
 * statistics, which lag up to about 5 s behind publishes and acks.
 */
export async function listQueues(vhost: string): Promise<{ name: string; type: string; messages: number }[]> {
  const rows = jsonRows(await rabbitmqctlAny(['list_queues', '-p', vhost, 'name', 'type', 'messages', '--formatter', 'json']));
  // A queue whose node is down is listed with its module for a type (rabbit_classic_queue).
  const type = (t: unknown) => String(t).replace(/^rabbit_(\w+)_queue$/, '$1');
  return rows.map((r) => ({ name: String(r.name), type: type(r.type), messages: Number(r.messages) || 0 }));
}

/**
 * Which node each client connection of a vhost is on: `name` is the broker's ("127.0.0.1:40312 ->
 * 127.0.0.1:5682"), `clientName` the connection_name the client gave, `node` from the server port.
 */
export async function connectionNodes(vhost: string): Promise<{ name: string; clientName: string | undefined; node: string }[]> {
  const rows = jsonRows(await rabbitmqctlAny(['list_connections', 'name', 'vhost', 'port', 'client_properties', '--formatter', 'json']));
  return rows
    .filter((r) => r.vhost === vhost)
    .map((r) => {
      const name = String(r.name);
      // client_properties comes as [key, type, value] triples.
      const properties = Array.isArray(r.client_properties) ? (r.client_properties as unknown[][]) : [];
      const clientName = properties.find((p) => p[0] === 'connection_name')?.[2];
      const port = Number(r.port) || Number(/:(\d+)$/.exec(name)?.[1]);
      const node = brokerNodes.find((n) => n.port === port)?.name ?? `unknown (port ${port})`;
      return { name, clientName: typeof clientName === 'string' ? clientName : undefined, node };
    });
}

/** Each quorum queue of a vhost: its leader (empty while none is known), its members and those online. */
async function quorumQueues(vhost: string): Promise<{ name: string; leader: string; members: string[]; online: string[] }[]> {
  const rows = jsonRows(
    await rabbitmqctlAny(['list_queues', '-p', vhost, 'name', 'type', 'leader', 'members', 'online', '--formatter', 'json']),
  );
  const names = (v: unknown) => (Array.isArray(v) ? v.map(String) : []);
  return rows
    .filter((r) => r.type === 'quorum')
    .map((r) => ({
      name: String(r.name),
      leader: typeof r.leader === 'string' ? r.leader : '',
      members: names(r.members),
      online: names(r.online),
    }));
}

/**
 * Each quorum queue of a vhost with its leader, its members and those online, one line each: what
 * a scenario that timed out waiting on the broker reports, so that its failure says which queue
 * had no leader or too few members.
 */
export async function quorumQueueStates(vhost: string): Promise<string> {
  return (await quorumQueues(vhost))
    .map((q) => `${q.name}: leader ${q.leader || 'none'}, members ${JSON.stringify(q.members)}, online ${JSON.stringify(q.online)}`)
    .join('\n');
}

/**
 * Resolves once every quorum queue of the vhost has a leader and all three members online: a
 * scenario that loses one node must start from a cluster that has caught up from the last one
 * (a queue with two of its three members down is unavailable, as Raft wants).
 */
export async function awaitQueuesHealthy(vhost: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const behind = (await quorumQueues(vhost)).filter((q) => !q.leader || q.online.length < brokerNodes.length);
    if (behind.length === 0) return;
    if (Date.now() > deadline) throw new Error(`quorum queues not healthy after ${timeoutMs} ms: ${behind.map((q) => q.name).join(', ')}`);
    await sleep(500);
  }
}
