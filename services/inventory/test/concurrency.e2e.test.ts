import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { EXCHANGES, ROUTING_KEYS } from '@stockflow/contracts';
import {
  createTestDatabase,
  graphqlClient,
  rawAmqp,
  startServiceProcess,
  type ServiceProcess,
  type TestDatabase,
} from '@stockflow/testing';
import { purgeQueues, servicesUnavailable } from './harness.ts';

const ORDERS = 300;

describe.skipIf(servicesUnavailable)('three inventory processes consuming one queue', () => {
  let database: TestDatabase;
  let amqp: Awaited<ReturnType<typeof rawAmqp>>;
  const processes: ServiceProcess[] = [];

  beforeAll(async () => {
    database = await createTestDatabase('inventory_concurrency');
    amqp = await rawAmqp(inject('amqpUrl'));
    await purgeQueues(amqp);
    const env = {
      DATABASE_URL: database.url,
      AMQP_URL: inject('amqpUrl'),
      PORT: '0',
      HOST: '127.0.0.1',
      // Small batches and prefetch, and one priority for all (deliveries dealt round-robin rather
      // than the overflow of one), so the three processes interleave on the hot row.
      CONSUMER_PREFETCH: '10',
      CONSUMER_BATCH_SIZE: '5',
      CONSUMER_PRIORITY: '0',
      OUTBOX_POLL_MS: '100',
      AUTH_DISABLED: 'true',
    };
    processes.push(...(await Promise.all([1, 2, 3].map(() => startServiceProcess('inventory', env)))));
  });

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await amqp?.close();
    await database?.drop();
  });

  it('never reserves more than the stock and answers every order exactly once', async () => {
    const gql = graphqlClient(`http://127.0.0.1:${processes[0]?.port}/graphql`);
    const create = async (sku: string, initialStock: number) =>
      Number(
        (
          await gql.data<{ createProduct: { id: string } }>(
            `mutation { createProduct(input: {sku: "${sku}", name: "${sku}", initialStock: ${initialStock}}) { id } }`,
          )
        ).createProduct.id,
      );
    const hot = await create('HOT', 20);
    const cold = await create('COLD', 50);

    const answers = await amqp.listen(EXCHANGES.inventory, 'stock.*');
    const coldQuantity = (i: number) => (i % 3) + 1;
    await Promise.all(
      Array.from({ length: ORDERS }, (_, i) => {
        const items = [{ product_id: hot, quantity: 1 }];
        if (i % 3 === 0) items.push({ product_id: cold, quantity: coldQuantity(i) });
        return amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCreated, { event: 'OrderCreated', order_id: `C-${i}`, items });
      }),
    );
    await answers.waitFor(ORDERS, 60_000);
    // Anything beyond ORDERS would be a double answer; give it a moment to show up.
    await new Promise((r) => setTimeout(r, 500));

    const byOrder = new Map<string, string[]>();
    for (const m of answers.received) {
      const id = (m.json as { order_id: string }).order_id;
      byOrder.set(id, [...(byOrder.get(id) ?? []), m.routingKey]);
    }
    expect(answers.received).toHaveLength(ORDERS);
    expect(byOrder.size).toBe(ORDERS);

    const reserved = answers.received
      .filter((m) => m.routingKey === 'stock.reserved')
      .map((m) => m.json as { items: { product_id: number; quantity: number }[] });
    const unitsOf = (productId: number) =>
      reserved.flatMap((r) => r.items).reduce((sum, line) => sum + (line.product_id === productId ? line.quantity : 0), 0);
    expect(unitsOf(hot)).toBe(20);

    const products = await gql.data<{ products: { nodes: { id: string; availableStock: number; reservedStock: number }[] } }>(
      `{ products(ids: ["${hot}", "${cold}"]) { nodes { id availableStock reservedStock } } }`,
    );
    const [hotRow, coldRow] = products.products.nodes;
    expect(hotRow).toEqual({ id: String(hot), availableStock: 0, reservedStock: 20 });
    expect(coldRow?.reservedStock).toBe(unitsOf(cold));
    expect((coldRow?.availableStock ?? -1) + (coldRow?.reservedStock ?? 0)).toBe(50);

    // No process hit an error on the way (a deadlock or a CHECK violation would log at level 50).
    expect(processes.map((p) => p.output()).filter((log) => /"level":50/.test(log))).toEqual([]);
  });
});
