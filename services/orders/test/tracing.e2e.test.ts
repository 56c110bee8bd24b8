import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { EXCHANGES } from '@stockflow/contracts';
import { parseTraceparent } from '@stockflow/observability';
import type { RunningService } from '@stockflow/runtime';
import { capturingLogger, createTestDatabase, eventually, graphqlClient, rawAmqp, type TestDatabase } from '@stockflow/testing';
import { loadInventoryConfig, startInventoryService } from '@stockflow/inventory';
import { loadOrdersConfig } from '../src/config.ts';
import { startOrdersService } from '../src/service.ts';

const servicesUnavailable = inject('servicesUnavailable');

describe.skipIf(servicesUnavailable)('one order followed across both services', () => {
  const lines: Record<string, unknown>[] = [];
  const databases: TestDatabase[] = [];
  const running: RunningService[] = [];
  let amqp: Awaited<ReturnType<typeof rawAmqp>>;

  beforeAll(async () => {
    const amqpUrl = inject('amqpUrl');
    amqp = await rawAmqp(amqpUrl);
    databases.push(await createTestDatabase('trace_inventory'), await createTestDatabase('trace_orders'));
    const env = (db: TestDatabase) => ({ DATABASE_URL: db.url, AMQP_URL: amqpUrl, PORT: '0', HOST: '127.0.0.1', AUTH_DISABLED: 'true' });
    running.push(await startInventoryService(loadInventoryConfig(env(databases[0] as TestDatabase)), capturingLogger('inventory', lines)));
    running.push(await startOrdersService(loadOrdersConfig(env(databases[1] as TestDatabase)), capturingLogger('orders', lines)));
  });
  afterAll(async () => {
    for (const s of running.reverse()) await s.close();
    await amqp?.close();
    for (const db of databases) await db.drop();
  });

  it('carries the W3C trace context of createOrder through every event, and logs each step with order, event and correlation ids', async () => {
    const [inventory, orders] = running as [RunningService, RunningService];
    const productId = (
      await graphqlClient(`http://127.0.0.1:${inventory.port}/graphql`).data<{ createProduct: { id: string } }>(
        'mutation { createProduct(input: {sku: "TRACE-1", name: "Traced", initialStock: 5}) { id } }',
      )
    ).createProduct.id;
    const ordersEvents = await amqp.listen(EXCHANGES.orders, 'order.*');
    const inventoryEvents = await amqp.listen(EXCHANGES.inventory, 'stock.*');

    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await fetch(`http://127.0.0.1:${orders.port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
      body: JSON.stringify({
        query: 'mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }',
        variables: { input: { customerId: 'tracy', items: [{ productId, quantity: 1 }] } },
      }),
    });
    const orderId = ((await res.json()) as { data: { createOrder: { id: string } } }).data.createOrder.id;

    const forOrder = (list: typeof ordersEvents.received) => list.filter((m) => (m.json as { order_id?: string }).order_id === orderId);
    const created = await eventually(
      () => Promise.resolve(forOrder(ordersEvents.received)),
      (l) => l.some((m) => m.routingKey === 'order.confirmed'),
    );
    const answered = forOrder(inventoryEvents.received);
    const flow = [...created, ...answered];
    expect(flow.map((m) => m.routingKey).sort()).toEqual(['order.confirmed', 'order.created', 'stock.reserved']);
    const spans = flow.map((m) => parseTraceparent(m.headers.traceparent));
    for (const span of spans) expect(span?.traceId).toBe(traceId);
    expect(new Set(spans.map((s) => s?.spanId)).size).toBe(3);

    // Both services logged the order's steps under the same correlation id.
    const logged = await eventually(
      () => Promise.resolve(lines.filter((l) => l.order_id === orderId)),
      (l) => l.some((x) => x.msg === 'order status changed' && x.status === 'CONFIRMED'),
    );
    expect(new Set(logged.map((l) => l.service))).toEqual(new Set(['orders', 'inventory']));
    for (const line of logged) {
      expect(line.correlation_id).toBe(traceId);
      expect(line.event_id).toEqual(expect.any(String));
    }
  });
});
