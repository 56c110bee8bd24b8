import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { signToken } from '@stockflow/client';
import { eventually, graphqlClient, type GraphqlClient } from '@stockflow/testing';
import { runTool, servicesUnderTest } from './services-under-test.ts';
import { simulateOrders, type OrderSimulationOptions } from './simulate-orders.ts';

const servicesUnavailable = inject('servicesUnavailable');
const SECRET = randomBytes(32).toString('hex');

describe.skipIf(servicesUnavailable)('npm run simulate (orders), against the real broker and Inventory Service', () => {
  const amqpUrl = inject('amqpUrl');
  const services = servicesUnderTest(amqpUrl, SECRET);
  let catalog: GraphqlClient;

  beforeAll(async () => {
    const { inventoryUrl } = await services.start('simorders', {});
    catalog = graphqlClient(inventoryUrl, { token: await signToken(SECRET, { sub: 'simulate-test', role: 'admin' }) });
  });
  afterAll(() => services.stop());

  /** A scarce product and a plentiful one, as the demo's doorbuster and the rest. */
  const products = async () => {
    const ids: number[] = [];
    for (const initialStock of [5, 100]) {
      const sku = `SIM-${randomBytes(4).toString('hex')}`;
      const created = await catalog.data<{ createProduct: { id: string } }>(
        'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }',
        { input: { sku, name: sku, priceCents: 100, initialStock } },
      );
      ids.push(Number(created.createProduct.id));
    }
    return ids;
  };
  const stock = async (ids: number[]) =>
    Promise.all(
      ids.map(
        async (id) =>
          (
            await catalog.data<{ product: { availableStock: number; reservedStock: number } }>(
              'query($id: ID!) { product(id: $id) { availableStock reservedStock } }',
              { id: String(id) },
            )
          ).product,
      ),
    );
  const asFound = [
    { availableStock: 5, reservedStock: 0 },
    { availableStock: 100, reservedStock: 0 },
  ];
  const simulate = (ids: number[], options: Partial<OrderSimulationOptions> = {}) =>
    simulateOrders({
      amqpUrl,
      orders: 20,
      products: ids,
      maxQuantity: 3,
      lines: 2,
      prefix: `SIM-${randomBytes(4).toString('hex')}`,
      timeoutMs: 15_000,
      ...options,
    });

  it('cancels the orders it reserved and waits for their release: the stock is as it found it when it returns', async () => {
    const ids = await products();
    const report = await simulate(ids);
    expect(report.reserved).toBeGreaterThan(0);
    expect(report.reserved + report.rejected).toBe(20);
    expect(report.cancelled).toHaveLength(report.reserved);
    expect(report.released).toBe(report.reserved);
    expect(report.holding).toEqual([]);
    expect(await stock(ids)).toEqual(asFound);
  });

  it('cancels the orders it left unanswered too, so that inventory reserves nothing for them when it gets to them', async () => {
    const ids = await products();
    // Gives up on the answers (and the releases) at once: inventory takes the orders after it.
    const report = await simulate(ids, { timeoutMs: 1 });
    expect(report.unanswered).toBeGreaterThan(0);
    expect(report.cancelled).toHaveLength(report.reserved + report.unanswered);
    await eventually(
      () => stock(ids),
      (now) => JSON.stringify(now) === JSON.stringify(asFound),
      15_000,
      250,
    );
  });

  it('counts the orders reserved with units backordered, and its cancellations give their places in the backorder back', async () => {
    const sku = `SIM-BO-${randomBytes(4).toString('hex')}`;
    const created = await catalog.data<{ createProduct: { id: string } }>(
      'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }',
      { input: { sku, name: sku, priceCents: 100, initialStock: 2, backorderLimit: 4 } },
    );
    const id = Number(created.createProduct.id);
    const report = await simulate([id], { orders: 8, maxQuantity: 1, lines: 1 });
    expect([report.reserved, report.backordered, report.rejected]).toEqual([6, 4, 2]);
    expect(report.released).toBe(6);
    const { product } = await catalog.data<{ product: { availableStock: number; reservedStock: number; backorderedStock: number } }>(
      `{ product(id: "${id}") { availableStock reservedStock backorderedStock } }`,
    );
    expect(product).toEqual({ availableStock: 2, reservedStock: 0, backorderedStock: 0 });
  });

  it('with keep, leaves the reserved orders holding their stock, and says which', async () => {
    const ids = await products();
    const report = await simulate(ids, { keep: true });
    expect(report.reserved).toBeGreaterThan(0);
    expect(report.cancelled).toEqual([]);
    expect(report.holding).toHaveLength(report.reserved);
    const [scarce, plentiful] = await stock(ids);
    expect((scarce?.reservedStock ?? 0) + (plentiful?.reservedStock ?? 0)).toBeGreaterThan(0);
  });

  it('runs from the command line, prints each answer and the cancellations, and exits 0 with the stock as it found it', async () => {
    const ids = await products();
    const { code, out } = await runTool('simulate.ts', ['--orders', '10', '--products', ids.join(','), '--amqp-url', amqpUrl]);
    expect(code, out).toBe(0);
    const reserved = Number(/reserved (\d+), rejected (\d+), unanswered 0/.exec(out)?.[1]);
    expect(reserved).toBeGreaterThan(0);
    expect(out).toContain(`cancelled ${reserved} orders to leave the stock as it was; inventory released ${reserved}`);
    expect(await stock(ids)).toEqual(asFound);
  });
});
