import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { graphqlClient, signToken } from '@stockflow/client';
import { runLoad, type LoadOptions } from '@stockflow/loadgen';
import { servicesUnderTest } from './services-under-test.ts';

const servicesUnavailable = inject('servicesUnavailable');
const SECRET = randomBytes(32).toString('hex');

describe.skipIf(servicesUnavailable)("the load generator's payments and stock locations, against the real broker and services", () => {
  const amqpUrl = inject('amqpUrl');
  const services = servicesUnderTest(amqpUrl, SECRET);

  /** A fresh platform (its own databases) whose holds last `holdSeconds`, with authentication on. */
  const platform = async (holdSeconds: number) => ({
    ...(await services.start('loadpay', { PAYMENT_HOLD_SECONDS: String(holdSeconds), PAYMENT_EXPIRY_INTERVAL_MS: '200' })),
    token: await signToken(SECRET, { sub: 'loadgen', role: 'admin' }),
  });
  const load = (urls: Awaited<ReturnType<typeof platform>>, options: Partial<LoadOptions>) =>
    runLoad({
      ...urls,
      orders: 40,
      concurrency: 10,
      products: 5,
      hot: 0,
      hotShare: 0,
      stock: 100_000,
      hotStock: 0,
      settleTimeoutMs: 30_000,
      audit: true,
      ...options,
    });

  afterEach(() => services.stop());

  it('pays exactly its share of the confirmed orders for their totals, and still times orders to their confirmation', async () => {
    const payAfterMs = 2_500;
    const report = await load(await platform(600), { payShare: 0.5, payAfterMs });
    expect(report.stuck).toEqual([]);
    expect(report.outcomes).toEqual({ PENDING: 0, CONFIRMED: 20, PAID: 20, CANCELLED: 0, FULFILLED: 0 });
    expect(report.payments).toEqual({ share: 0.5, afterMs: payAfterMs, confirmed: 40, paid: 20, refused: {}, errors: {}, expired: 0 });
    expect(report.audit?.problems).toEqual([]);
    expect(report.audit?.payments.PAID).toBe(20);
    // A payment moves the order again seconds later; the latency is still to the inventory's decision.
    expect(report.latencyMs.max).toBeLessThan(payAfterMs);
  });

  it('reports payments sent after the hold as refused, and the orders as expired', async () => {
    const report = await load(await platform(1), { orders: 10, payShare: 1, payAfterMs: 3_000 });
    expect(report.outcomes).toMatchObject({ CANCELLED: 10, PAID: 0, CONFIRMED: 0 });
    expect(report.payments).toMatchObject({ confirmed: 10, paid: 0, errors: {}, expired: 10 });
    // Refused by the expired hold, or by the order already cancelled by the sweep: the money is asked back either way.
    expect(Object.values(report.payments.refused).reduce((a, b) => a + b, 0)).toBe(10);
    expect(report.audit?.problems).toEqual([]);
    expect(report.audit?.payments.REFUND_REQUESTED).toBe(10);
  });

  it('leaves orders alone without --pay-share', async () => {
    const report = await load(await platform(600), { orders: 10 });
    expect(report.outcomes).toMatchObject({ CONFIRMED: 10, PAID: 0 });
    expect(report.payments).toEqual({ share: 0, afterMs: 0, confirmed: 0, paid: 0, refused: {}, errors: {}, expired: 0 });
  });

  it('stocks its catalog over several locations: products living apart split orders, hot stock spread over all', async () => {
    const urls = await platform(600);
    const report = await load(urls, { orders: 100, products: 7, hot: 1, hotShare: 0.3, hotStock: 9, locations: 3 });
    expect(report.stuck).toEqual([]);
    expect(report.audit?.problems).toEqual([]);
    const inventory = graphqlClient(urls.inventoryUrl, { token: urls.token });
    const { products } = await inventory.data<{
      products: {
        nodes: { sku: string; stockLevels: { location: { code: string }; available: number; reserved: number; sold: number }[] }[];
      };
    }>('{ products(first: 10) { nodes { sku stockLevels { location { code } available reserved sold } } } }');
    const at = (sku: string) =>
      products.nodes
        .find((p) => p.sku === sku)
        ?.stockLevels.map((l) => [l.location.code, l.available + l.reserved + l.sold])
        // A product is created at MAIN, with no units when it lives elsewhere.
        .filter(([, units]) => units !== 0)
        .sort();
    expect(at('LG-00000')).toEqual([
      ['LOC-2', 3],
      ['LOC-3', 3],
      ['MAIN', 3],
    ]);
    expect(at('LG-00001')).toEqual([['LOC-2', 100_000]]);
    expect(at('LG-00002')).toEqual([['LOC-3', 100_000]]);
    expect(at('LG-00003')).toEqual([['MAIN', 100_000]]);
    // Where each order's units were reserved, from the ledger (order ids shown to an admin).
    const { products: ledger } = await inventory.data<{
      products: { nodes: { movements: { nodes: { orderId: string; locationCode: string }[] } }[] };
    }>('{ products(first: 10) { nodes { movements(kinds: [RESERVATION], first: 100) { nodes { orderId locationCode } } } } }');
    const placesOf = new Map<string, Set<string>>();
    for (const m of ledger.nodes.flatMap((p) => p.movements.nodes)) {
      placesOf.set(m.orderId, (placesOf.get(m.orderId) ?? new Set()).add(m.locationCode));
    }
    // Every location supplied some order, and some orders were split across locations.
    expect(new Set([...placesOf.values()].flatMap((places) => [...places]))).toEqual(new Set(['MAIN', 'LOC-2', 'LOC-3']));
    expect([...placesOf.values()].some((places) => places.size > 1)).toBe(true);
  });
});
