import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXCHANGES, queues, ROUTING_KEYS } from '@stockflow/contracts';
import { eventually } from '@stockflow/testing';
import { servicesUnavailable, startInventory, type InventoryHarness } from './harness.ts';

describe.skipIf(servicesUnavailable)('Inventory /metrics', () => {
  let h: InventoryHarness;
  beforeAll(async () => {
    h = await startInventory();
  });
  afterAll(async () => h?.close());

  const metrics = async () => {
    const res = await fetch(`http://127.0.0.1:${h.service.port}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    return res.text();
  };
  /** The value of one sample, or undefined when the series is absent. */
  const sample = (text: string, series: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };

  it('counts decisions, rejections by reason, deliveries and publishes, and reports the outbox and dead letters', async () => {
    const productId = await h.createProduct('METRICS-1', 1);
    await h.amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCreated, {
      event: 'OrderCreated',
      order_id: 'ORD-M-1',
      items: [{ product_id: productId, quantity: 1 }],
    });
    await h.amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCreated, {
      event: 'OrderCreated',
      order_id: 'ORD-M-2',
      items: [{ product_id: productId, quantity: 1 }],
    });
    await h.amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCreated, { not: 'an order' });
    await h.answersFor('ORD-M-2');
    const svc = 'service="inventory"';
    const text = await eventually(
      metrics,
      (t) => sample(t, `stockflow_dead_letter_messages{queue="order.created.inventory",${svc}}`) === 1,
    );

    expect(sample(text, `stockflow_reservation_decisions_total{outcome="reserved",${svc}}`)).toBe(1);
    expect(sample(text, `stockflow_reservation_decisions_total{outcome="rejected",${svc}}`)).toBe(1);
    expect(sample(text, `stockflow_rejections_total{reason="insufficient_stock",${svc}}`)).toBe(1);
    expect(
      sample(text, `stockflow_messages_consumed_total{queue="order.created.inventory",event="OrderCreated",outcome="applied",${svc}}`),
    ).toBe(2);
    expect(sample(text, `stockflow_messages_consumed_total{queue="order.created.inventory",event="invalid",outcome="parked",${svc}}`)).toBe(
      1,
    );
    expect(sample(text, `stockflow_messages_published_total{routing_key="stock.reserved",outcome="confirmed",${svc}}`)).toBe(1);
    expect(sample(text, `stockflow_messages_published_total{routing_key="stock.rejected",outcome="confirmed",${svc}}`)).toBe(1);
    expect(sample(text, `stockflow_consumer_up{queue="${queues.orderCreatedInventory.queue}",${svc}}`)).toBe(1);
    expect(sample(text, `stockflow_queue_messages_ready{queue="${queues.orderCreatedInventory.queue}",${svc}}`)).toBe(0);
    expect(sample(text, `stockflow_outbox_backlog{${svc}}`)).toBe(0);
    expect(sample(text, `stockflow_outbox_oldest_age_seconds{${svc}}`)).toBe(0);
    expect(text).toContain('stockflow_batch_duration_seconds_bucket');
    expect(sample(text, `stockflow_graphql_request_duration_seconds_count{${svc},operation="mutation",outcome="ok"}`)).toBe(1);
    expect(text).toContain('process_resident_memory_bytes');
  });
});
