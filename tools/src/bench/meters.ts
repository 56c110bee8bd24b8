/** What a scenario costs: CPU by kind of process and peak resident memory, read from /proc. */
import { readdir, readFile } from 'node:fs/promises';
import type { Front, Platform } from './platforms.ts';

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
export async function cpuMeter(platform: Platform, front?: Front): Promise<() => Promise<Record<string, number>>> {
  const kinds = async () => ({ ...platform.servicePids(front), ...(await machinePids(platform)) });
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

/**
 * The machine's CPU so far, from the first line of /proc/stat: all jiffies (user to steal; guest
 * time is inside user already), and the idle ones. Waiting for I/O counts as idle: settle waits
 * for the processes' CPU, not for the disk.
 */
async function machineJiffies(): Promise<{ total: number; idle: number }> {
  const [, ...fields] = ((await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '').trim().split(/\s+/);
  const values = fields.slice(0, 8).map(Number);
  return { total: values.reduce((sum, v) => sum + v, 0), idle: (values[3] ?? 0) + (values[4] ?? 0) };
}

/** Below this share of the machine busy, it is taken as settled (the idle platforms and nodes cost a few percent). */
const SETTLED_BUSY = 0.1;
const SETTLE_WINDOW_MS = 1_000;
const SETTLE_TIMEOUT_MS = 60_000;

/**
 * Waits until the machine has been nearly idle for a second (at most a minute), right before a
 * scenario starts counting: it must not pay for what came before it. After a scenario, RabbitMQ
 * and PostgreSQL (counted machine-wide) stay busy for a second or two; after a scenario's own
 * set-up (a backlog queued, orders confirmed for the expiry) longer. Says so when it waited more
 * than two seconds, and when the machine did not settle.
 */
export async function settle(): Promise<void> {
  const started = Date.now();
  let before = await machineJiffies();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_WINDOW_MS));
    const now = await machineJiffies();
    const busy = 1 - (now.idle - before.idle) / Math.max(1, now.total - before.total);
    const waited = Date.now() - started;
    if (busy < SETTLED_BUSY) {
      if (waited > 2_000) process.stderr.write(`   waited ${(waited / 1_000).toFixed(0)} s for the machine to settle\n`);
      return;
    }
    if (waited >= SETTLE_TIMEOUT_MS) {
      process.stderr.write(
        `   the machine did not settle within ${(waited / 1_000).toFixed(0)} s (${(busy * 100).toFixed(0)}% busy); measuring anyway\n`,
      );
      return;
    }
    before = now;
  }
}

/** CPU ms by kind divided by the orders completed. */
export const perOrder = (cpu: Record<string, number>, orders: number) =>
  Object.fromEntries(Object.entries(cpu).map(([k, ms]) => [k, ms / Math.max(orders, 1)]));

/** Samples the resident memory of the platform's processes while `work` runs; returns the peak in MB. */
export async function peakRss<T>(platform: Platform, work: () => Promise<T>, front?: Front): Promise<[T, number]> {
  let peak = 0;
  const sample = async () => {
    for (const pid of platform.pids(front)) {
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
