import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export const repoRoot = path.resolve(import.meta.dirname, '..', '..', '..');

export interface ServiceProcess {
  child: ChildProcess;
  port: number;
  output(): string;
  /** Sends a signal (SIGTERM by default) and waits for the process to exit, killing it after STOP_GRACE_MS (stopChild). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** What `npm run build` makes: one bundle per runnable, under dist/. */
export type Runnable = 'inventory' | 'orders' | 'stockflow' | 'gateway';

/**
 * The services' old generation is capped: their live heap is ~27 MB, yet under load V8 let the
 * Order Service's garbage grow it past 256 MB resident over a long run. With a cap V8 collects
 * sooner (measured: peak RSS 220-261 -> at most 146 MB, throughput 6-13% lower). The young
 * generation is set larger than V8's 16 MB semi-spaces: nearly everything a request or a message
 * allocates dies young, so fewer scavenges copy the same few live objects (measured: the Order
 * Service's GC time halved, ~0.08 ms of CPU per order, for ~30 MB more resident). The embedded
 * platform, two services and their databases in one process, keeps V8's default.
 */
const HEAP_CAP = '--max-old-space-size=192';
const SERVICE_HEAP_FLAGS = [HEAP_CAP, '--max-semi-space-size=32'];
const HEAP_FLAGS: Record<Runnable, string[]> = {
  inventory: SERVICE_HEAP_FLAGS,
  orders: SERVICE_HEAP_FLAGS,
  // V8's young generation: the larger one saved the gateway no measurable CPU, and its joined
  // reads (Hive's runtime) already take it to ~200 MB resident under a 256 MiB limit.
  gateway: [HEAP_CAP],
  stockflow: [],
};

/**
 * With STOCKFLOW_CPU_PROF_DIR set, every runnable started here writes a V8 CPU profile there when
 * it exits (node refuses --cpu-prof in NODE_OPTIONS): how the bench's processes are profiled.
 * STOCKFLOW_CPU_PROF_INTERVAL_US sets their sampling interval (V8's default is 1 ms; finer is slower).
 */
export const profileFlags = (): string[] => {
  const dir = process.env.STOCKFLOW_CPU_PROF_DIR;
  const interval = process.env.STOCKFLOW_CPU_PROF_INTERVAL_US;
  if (interval !== undefined && !/^[1-9]\d*$/.test(interval))
    throw new Error(`STOCKFLOW_CPU_PROF_INTERVAL_US must be a whole number of microseconds above 0, not ${JSON.stringify(interval)}`);
  if (!dir) return [];
  return ['--cpu-prof', `--cpu-prof-dir=${dir}`, ...(interval ? [`--cpu-prof-interval=${interval}`] : [])];
};

/** The command that runs a built service: the one the Dockerfiles run. */
export const runnableCommand = (name: Runnable): [string, string[]] => [
  process.execPath,
  [...HEAP_FLAGS[name], ...profileFlags(), '--enable-source-maps', path.join(repoRoot, 'dist', name, 'main.mjs')],
];

/** Builds the bundles the service processes run (`npm run build`). */
export function buildRunnables(): void {
  execFileSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'tools', 'src', 'build.ts')], { cwd: repoRoot, stdio: 'pipe' });
}

/**
 * Longest a process is given to exit after its signal before it is killed: a service gives its
 * work SHUTDOWN_TIMEOUT_MS (10 s by default) and exits at twice that at the latest, so one still
 * there after 30 s with the default is taken to hang (its exit code is then null).
 */
export const STOP_GRACE_MS = 30_000;

/**
 * Sends `signal` to `child` unless it has exited, and resolves with its exit code once it has; a
 * child still there after `graceMs` is killed (SIGKILL, its code then null), never left behind.
 */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = STOP_GRACE_MS): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill(signal);
  const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  return exited.finally(() => clearTimeout(killer));
}

/**
 * Runs a built service as a child process (a real, separate process, started with the command
 * its container runs) and resolves once it logs that it is listening. Tests can `kill -9` it
 * through `stop('SIGKILL')`. The test run builds the bundles first (global setup).
 */
export const startServiceProcess = (name: Runnable, env: Record<string, string>, timeoutMs = 30_000): Promise<ServiceProcess> =>
  startProcess(name, runnableCommand(name), env, timeoutMs);

/**
 * Runs `command` as a child process and resolves once it logs its port and that it is listening
 * (a JSON line with `"port"` and `listening`, as the services log it).
 */
export async function startProcess(
  name: string,
  [command, args]: [string, string[]],
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<ServiceProcess> {
  const child = spawn(command, args, {
    cwd: repoRoot,
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Not left running: whoever started it gets no handle to stop it.
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within ${timeoutMs} ms:\n${log}`));
    }, timeoutMs);
    const onData = () => {
      const match = /"port":(\d+).*listening/.exec(log);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    child.stdout?.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before it was ready:\n${log}`));
    });
  });

  return {
    child,
    port,
    output: () => log,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      await stopChild(child, signal);
      return exited;
    },
  };
}
