import { describe, expect, it } from 'vitest';
import { createMetrics, scrapedGauge } from './metrics.ts';
import { metricSum } from './metrics-text.ts';

describe('metrics during an outage', () => {
  it('still serves every metric when a gauge read from the database fails, that gauge keeping its last value', async () => {
    const metrics = createMetrics('test');
    let databaseUp = true;
    const read = () => (databaseUp ? Promise.resolve({ backlog: 7, oldestAgeSeconds: 3 }) : Promise.reject(new Error('database down')));
    metrics.sources.outbox = read;
    scrapedGauge(metrics, { name: 'stockflow_test_pending', help: 'test', read: () => read().then((r) => r.backlog * 2) });
    metrics.consumersUp.set({ queue: 'stock.orders' }, 1);
    expect(metricSum(await metrics.registry.metrics(), 'stockflow_outbox_backlog')).toBe(7);

    databaseUp = false;
    const text = await metrics.registry.metrics();
    expect(metricSum(text, 'stockflow_outbox_backlog')).toBe(7);
    expect(metricSum(text, 'stockflow_test_pending')).toBe(14);
    expect(metricSum(text, 'stockflow_consumer_up', { queue: 'stock.orders' })).toBe(1);
  });
});
