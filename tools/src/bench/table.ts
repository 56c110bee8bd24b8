/** The bench's one table: a row per configuration and scenario, each figure the median of the rounds. */
import { percentile, type LoadReport } from '@stockflow/loadgen';
import type { Backlog, DrainResult } from './drain.ts';
import type { ExpiryResult } from './expiry.ts';
import type { JoinedResult } from './joined.ts';

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

export interface LoadRun {
  report: LoadReport;
  rss: number;
  cpuPerOrder: Record<string, number>;
}

export const loadRow = (config: string, name: string, runs: LoadRun[]): string[] => {
  const failed = runs.filter((r) => !r.report.ok);
  return [
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
  ];
};

export const joinedRow = (config: string, requests: number, joinedRuns: { result: JoinedResult; rss: number }[]): string[] => {
  const failed = joinedRuns.filter((j) => !j.result.ok);
  return [
    config,
    `joined via the gateway: an order's lines with their products (${requests} requests over ${fmt(Math.min(...joinedRuns.map((j) => j.result.orders)))} orders, concurrency 200; latency and CPU per request)`,
    '-',
    `${figure(joinedRuns.map((j) => j.result.requestsPerSecond))} requests/s; a new connection's first answer under that load ${figure(joinedRuns.map((j) => j.result.newConnectionMs))} ms`,
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
  ];
};

export const drainRow = (config: string, queued: number, backlog: Backlog, drained: { result: DrainResult; rss: number }[]): string[] => [
  config,
  `backlog drain (${queued} queued; ${backlog.name})`,
  '-',
  `${figure(drained.map((d) => d.result.decisionsPerSecond))} decisions/s; ${figure(drained.map((d) => d.result.reservationsPerSecond))} reservations/s while stock lasts`,
  '-',
  '-',
  fmt(Math.max(...drained.map((d) => d.rss))),
  cpuColumn(drained.map((d) => d.result.cpuPerOrder)),
  drained.every((d) => d.result.exact) ? 'pass (exactly its stock reserved)' : 'FAIL',
];

export const expiryRow = (config: string, expired: { result: ExpiryResult; rss: number }[]): string[] => [
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
];

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
export const renderTable = (rows: string[][]) => [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
