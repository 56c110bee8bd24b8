import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { routeOf } from '@stockflow/contracts';
import { graphqlClient } from '@stockflow/client';
import { metricSum } from '@stockflow/observability';
import { cpuMeter, perOrder, settle } from './meters.ts';
import type { Platform } from './platforms.ts';
import { publishAll } from './publish.ts';

/** The answers a drained OrderCreated gets. */
const ANSWER_KEYS = [routeOf('StockReserved').routingKey, routeOf('StockRejected').routingKey];

const meta = () => ({ event_id: randomUUID(), occurred_at: new Date().toISOString() });

export interface DrainResult {
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
export interface Backlog {
  key: 'drain' | 'drain-reservable' | 'drain-spread';
  name: string;
  products: number;
  reservable: number;
}

export const BACKLOGS: Backlog[] = [
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
export async function backlogDrain(platform: Platform, count: number, backlog: Backlog): Promise<DrainResult | undefined> {
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
    // The backlog just queued is RabbitMQ's work, not the drain's.
    await settle();
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
