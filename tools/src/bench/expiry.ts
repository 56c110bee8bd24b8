import pg from 'pg';
import { metricSum } from '@stockflow/observability';
import { load } from './load.ts';
import { cpuMeter, perOrder, settle } from './meters.ts';
import type { Platform } from './platforms.ts';

export interface ExpiryResult {
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
export async function expiry(platform: Platform, count: number): Promise<ExpiryResult | undefined> {
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
    // The confirmations just made are the set-up's work, not the expiry's: settled before the baselines are read.
    await settle();
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
