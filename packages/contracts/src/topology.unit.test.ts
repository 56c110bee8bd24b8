import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  EVENT_ROUTES,
  EXCHANGES,
  platformQueueFor,
  QUEUE_CONSUMERS,
  queueDeclarations,
  queues,
  queuesConsumedBy,
  ROUTING_KEYS,
} from './topology.ts';

const eventsDoc = readFileSync(path.join(import.meta.dirname, '..', '..', '..', 'docs', 'events.md'), 'utf8');

describe('queue declarations', () => {
  it('are stated in docs/events.md exactly as declared, for both queue types', () => {
    for (const spec of Object.values(queues)) {
      const quorum = queueDeclarations(spec, 'quorum');
      const classic = queueDeclarations(spec, 'classic');
      const pairs = [
        [quorum.main, classic.main],
        ...quorum.retries.map((r, i) => [r, classic.retries[i]]),
        [quorum.deadLetter, classic.deadLetter],
      ];
      for (const [q, c] of pairs) {
        const row = `| \`${q?.queue}\` | \`${JSON.stringify(q?.arguments)}\` | \`${JSON.stringify(c?.arguments)}\` |`;
        expect(eventsDoc, `docs/events.md lacks the row for ${q?.queue}`).toContain(row);
      }
    }
  });

  it('make every quorum queue replicated and dead-letter at least once, and leave classic ones as they were', () => {
    const { main, retries, deadLetter } = queueDeclarations(queues.orderCreatedInventory, 'quorum');
    for (const d of [main, ...retries, deadLetter]) expect(d.arguments['x-queue-type']).toBe('quorum');
    for (const d of [main, ...retries]) {
      expect(d.arguments).toMatchObject({ 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' });
    }
    const classic = queueDeclarations(queues.orderCreatedInventory, 'classic');
    expect(classic.main.arguments).toEqual(queues.orderCreatedInventory.arguments);
    expect(classic.deadLetter.arguments).toEqual({});
  });
});

describe('platformQueueFor', () => {
  it('expects a queue for what the platform consumes, by name and when parked, and none for OrderConfirmed', () => {
    expect(platformQueueFor(EXCHANGES.orders, ROUTING_KEYS.orderCreated)).toBe(true);
    expect(platformQueueFor(EXCHANGES.inventory, ROUTING_KEYS.stockReleased)).toBe(true);
    expect(platformQueueFor(EXCHANGES.inventory, ROUTING_KEYS.backorderFilled)).toBe(true);
    expect(platformQueueFor('', 'order.created.inventory.retry.5s')).toBe(true);
    expect(platformQueueFor(EXCHANGES.deadLetter, queues.stockOrders.queue)).toBe(true);
    expect(platformQueueFor(EXCHANGES.deadLetter, 'someone.elses.queue')).toBe(false);
    expect(platformQueueFor(EXCHANGES.orders, ROUTING_KEYS.orderConfirmed)).toBe(false);
  });
});

describe('EVENT_ROUTES', () => {
  it('keeps every route of the wire contract as other teams know it (changing one breaks them)', () => {
    const routes = Object.fromEntries(
      Object.entries(EVENT_ROUTES).map(([event, r]) => [event, `${r.exchange} ${r.routingKey} by ${r.publisher}`]),
    );
    expect(routes).toEqual({
      OrderCreated: 'orders order.created by orderService',
      OrderConfirmed: 'orders order.confirmed by orderService',
      OrderCancelled: 'orders order.cancelled by orderService',
      OrderFulfilled: 'orders order.fulfilled by orderService',
      OrderPaid: 'orders order.paid by orderService',
      RefundRequested: 'orders order.refund_requested by orderService',
      StockReserved: 'inventory stock.reserved by inventoryService',
      StockRejected: 'inventory stock.rejected by inventoryService',
      StockReleased: 'inventory stock.released by inventoryService',
      BackorderFilled: 'inventory stock.backorder_filled by inventoryService',
      PaymentSucceeded: 'payments payment.succeeded by paymentService',
      PaymentFailed: 'payments payment.failed by paymentService',
    });
  });

  it('gives every routing key exactly one event', () => {
    const keys = Object.values(EVENT_ROUTES).map((r) => r.routingKey);
    expect([...keys].sort()).toEqual(Object.values(ROUTING_KEYS).sort());
  });
});

describe('QUEUE_CONSUMERS', () => {
  it('gives each service the queues it consumes, and the payment service its refund requests', () => {
    const names = (party: Parameters<typeof queuesConsumedBy>[0]) => queuesConsumedBy(party).map((q) => q.queue);
    expect(names('inventoryService')).toEqual(['order.created.inventory', 'order.cancelled.inventory', 'order.fulfilled.inventory']);
    expect(names('orderService')).toEqual(['stock.orders', 'payment.orders']);
    expect(names('paymentService')).toEqual(['order.refund_requested.payments']);
    expect(Object.keys(QUEUE_CONSUMERS)).toEqual(Object.keys(queues));
  });
});
