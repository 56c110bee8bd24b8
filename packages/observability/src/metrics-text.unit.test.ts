import { describe, expect, it } from 'vitest';
import { metricSamples, metricSum } from './metrics-text.ts';

describe('metricSamples', () => {
  const text = [
    '# HELP stockflow_dead_letter_messages Parked.',
    '# TYPE stockflow_dead_letter_messages gauge',
    'stockflow_dead_letter_messages{queue="order.created.inventory",service="inventory"} 3',
    'stockflow_dead_letter_messages{queue="stock.orders",service="orders"} 0',
    'stockflow_dead_letter_messages_extra 9',
    'stockflow_outbox_backlog{service="orders"} 12',
    'stockflow_plain 7',
  ].join('\n');

  it('reads every sample of one metric with its labels, and nothing of metrics sharing its prefix', () => {
    expect(metricSamples(text, 'stockflow_dead_letter_messages')).toEqual([
      { labels: { queue: 'order.created.inventory', service: 'inventory' }, value: 3 },
      { labels: { queue: 'stock.orders', service: 'orders' }, value: 0 },
    ]);
    expect(metricSamples(text, 'stockflow_plain')).toEqual([{ labels: {}, value: 7 }]);
    expect(metricSamples(text, 'stockflow_missing')).toEqual([]);
  });

  it('sums the samples of one metric whose labels match, and only those', () => {
    expect(metricSum(text, 'stockflow_dead_letter_messages')).toBe(3);
    expect(metricSum(text, 'stockflow_dead_letter_messages', { service: 'orders' })).toBe(0);
    expect(metricSum(text, 'stockflow_dead_letter_messages', { queue: 'order.created.inventory', service: 'inventory' })).toBe(3);
    expect(metricSum(text, 'stockflow_missing')).toBe(0);
  });
});
