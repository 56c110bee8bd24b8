/** What the fault scenarios share: a load placed in the background, and the audit once it settled. */
import { expect } from 'vitest';
import { queues } from '@stockflow/contracts';
import { graphqlClient } from '@stockflow/client';
import { metricSum } from '@stockflow/observability';
import { eventually, placeOrders, rawAmqp, type Cluster } from '@stockflow/testing';
import { auditPlatform } from '@stockflow/loadgen';

/** Empties every platform queue and its DLQ (a scenario starts with nothing left by the last one). */
export async function purgeQueues(amqpUrl: string) {
  const amqp = await rawAmqp(amqpUrl);
  for (const q of Object.values(queues)) {
    await amqp.connection.queuePurge(q.queue).catch(() => undefined);
    await amqp.connection.queuePurge(q.deadLetterQueue).catch(() => undefined);
  }
  await amqp.close();
}

/**
 * Places `count` orders; `third` resolves once a third of them are placed. A fault injected then
 * lands mid-load however fast this machine places them (a fixed sleep let a quick run finish the
 * whole load before its fault).
 */
export function placeInBackground(c: Cluster, catalog: { all: number[]; hot: number[] }, count: number) {
  let reached: () => void = () => undefined;
  const third = new Promise<void>((resolve) => (reached = resolve));
  const load = placeOrders(c.orders.url, catalog, {
    count,
    concurrency: 10,
    onPlaced: (n) => {
      if (n >= count / 3) reached();
    },
  });
  return { load, third };
}

/** How many orders the Order Service holds PENDING. */
export const pendingCount = (c: Cluster) =>
  graphqlClient(c.orders.url)
    .data<{ orders: { totalCount: number } }>('{ orders(status: PENDING) { totalCount } }')
    .then((d) => d.orders.totalCount);

/** What the Order Service's outbox still holds, as its metric reports it. */
export const outboxBacklog = (c: Cluster) =>
  fetch(c.orders.url.replace('/graphql', '/metrics'))
    .then((r) => r.text())
    .then((text) => metricSum(text, 'stockflow_outbox_backlog'));

/** Waits until no order is PENDING, then runs the stock audit: it must find no problem. */
export async function settleAndAudit(c: Cluster, timeoutMs = 60_000) {
  await eventually(
    () => pendingCount(c),
    (pending) => pending === 0,
    timeoutMs,
    250,
  ).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}\n${c.logs()}`);
  });
  const report = await auditPlatform({ orders: c.orders.url, inventory: c.liveInventory().url });
  expect(report.problems, c.logs()).toEqual([]);
  return report;
}

/**
 * Places orders in rounds of `perRound` every `everyMs` until stopped, for a fault that takes
 * longer than one load would (a rolling restart of the broker's nodes).
 */
export function keepPlacing(c: Cluster, catalog: { all: number[]; hot: number[] }, perRound = 20, everyMs = 250) {
  let stopped = false;
  const totals = { accepted: [] as string[], failed: 0 };
  const running = (async () => {
    while (!stopped) {
      const round = await placeOrders(c.orders.url, catalog, { count: perRound, concurrency: 5 });
      totals.accepted.push(...round.accepted);
      totals.failed += round.failed;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    totals,
    async stop() {
      stopped = true;
      await running;
      return totals;
    },
  };
}
