import { afterEach, describe, expect, it } from 'vitest';
import { queues, RefundRequested, type IncomingMessage } from '@stockflow/contracts';
import { metricSum } from '@stockflow/observability';
import { eventually, graphqlClient, startServiceProcess, type GraphqlClient, type ServiceProcess } from '@stockflow/testing';
import { startPlatform, type RunningPlatform } from '../src/platform.ts';
import { embeddedEnv } from './embedded.ts';

const SHUTDOWN_TIMEOUT_MS = 3_000;
const REFUND_QUEUE = queues.refundRequestsPayments.queue;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A port `npm start` printed for one of its parts. */
const printedPort = (output: string, label: string) => {
  const port = new RegExp(`${label}\\s+http://localhost:(\\d+)/`).exec(output)?.[1];
  if (!port) throw new Error(`no ${label} URL in the output:\n${output}`);
  return Number(port);
};

/**
 * `npm start` asks for a refund: nothing consumes the payment service's queue in the embedded
 * mode, and the platform goes on as RabbitMQ's would, the refund kept until a consumer comes.
 */
describe('embedded platform asking for a refund', { timeout: 180_000 }, () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  it('keeps its outbox flowing, holds the refunds for the payment service across a restart, and hands them over when one attaches', async () => {
    const embedded = await embeddedEnv('refund');
    cleanup.push(embedded.remove);
    const env = { ...embedded.env, LOG_LEVEL: 'info', SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) };
    const stockflow: ServiceProcess = await startServiceProcess('stockflow', env, 90_000);
    cleanup.push(() => stockflow.stop('SIGKILL'));
    await eventually(
      () => Promise.resolve(stockflow.output()),
      (output) => output.includes('Stop with Ctrl+C'),
      60_000,
    );
    const ordersPort = printedPort(stockflow.output(), 'Order Service GraphQL');
    const orders = graphqlClient(`http://127.0.0.1:${ordersPort}/graphql`);
    const inventory = graphqlClient(`http://127.0.0.1:${printedPort(stockflow.output(), 'Inventory GraphQL')}/graphql`);
    /** What the Order Service's /metrics says of its outbox and of the refunds waiting for the payment service. */
    const flow = async () => {
      const text = await (await fetch(`http://127.0.0.1:${ordersPort}/metrics`)).text();
      return {
        backlog: metricSum(text, 'stockflow_outbox_backlog'),
        refundsWaiting: metricSum(text, 'stockflow_queue_messages_ready', { queue: REFUND_QUEUE }),
        publishesFailed: metricSum(text, 'stockflow_messages_published_total', { outcome: 'failed' }),
      };
    };
    const product = (
      await inventory.data<{ createProduct: { id: string } }>(
        'mutation { createProduct(input: {sku: "TV", name: "TV", priceCents: 19900, initialStock: 10}) { id } }',
      )
    ).createProduct.id;
    /** Places an order and waits until it is CONFIRMED, within `withinMs`. */
    const confirmedOrder = async (client: GraphqlClient, withinMs: number) => {
      const { id } = (
        await client.data<{ createOrder: { id: string } }>('mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }', {
          input: { customerId: 'alice', items: [{ productId: product, quantity: 1 }] },
        })
      ).createOrder;
      await eventually(
        async () => (await client.data<{ order: { status: string } }>(`{ order(id: "${id}") { status } }`)).order.status,
        (status) => status === 'CONFIRMED',
        withinMs,
        50,
      );
      return id;
    };
    const pay = async (orderId: string, amountCents: number) =>
      (
        await orders.data<{ recordPayment: { outcome: string } }>(
          'mutation($input: RecordPaymentInput!) { recordPayment(input: $input) { outcome } }',
          { input: { orderId, paymentId: `pay-${orderId}`, amountCents, currency: 'EUR' } },
        )
      ).recordPayment.outcome;

    // Paid, then cancelled: its money is asked back.
    const cancelled = await confirmedOrder(orders, 5_000);
    expect(await pay(cancelled, 19_900)).toBe('PAID');
    await orders.data(`mutation { cancelOrder(id: "${cancelled}") { id } }`);
    // The outbox delivers the refund request and the OrderCancelled beside it within seconds: nothing waits for a consumer.
    expect(await eventually(flow, (f) => f.backlog === 0 && f.refundsWaiting === 1, 3_000, 100)).toEqual({
      backlog: 0,
      refundsWaiting: 1,
      publishesFailed: 0,
    });
    // New orders are still decided at once, and a wrong amount is asked back as well.
    const overpaid = await confirmedOrder(orders, 2_000);
    expect(await pay(overpaid, 20_000)).toBe('REFUND_REQUESTED');
    expect(await eventually(flow, (f) => f.backlog === 0 && f.refundsWaiting === 2, 3_000, 100)).toEqual({
      backlog: 0,
      refundsWaiting: 2,
      publishesFailed: 0,
    });
    expect(stockflow.output()).not.toMatch(/publish failed|publishing after commit failed|circuit breaker/);

    // Ctrl+C: stopped in time, cleanly.
    const stoppedAt = Date.now();
    expect(await stockflow.stop('SIGINT')).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(2 * SHUTDOWN_TIMEOUT_MS);

    // The next start still holds both refunds, and gives them to the payment service once it consumes its queue.
    const quiet = { ...env, LOG_LEVEL: 'silent' };
    let platform: RunningPlatform | undefined = await startPlatform(quiet);
    cleanup.push(() => platform?.close() ?? Promise.resolve());
    expect(await platform.orders.transport.depth(queues.refundRequestsPayments)).toBe(2);
    const refunds: IncomingMessage[] = [];
    await platform.orders.transport.consume(queues.refundRequestsPayments, { prefetch: 10 }, (message) => {
      refunds.push(message);
      return Promise.resolve();
    });
    await eventually(
      () => platform?.orders.transport.depth(queues.refundRequestsPayments) ?? Promise.resolve(-1),
      (n) => n === 0,
    );
    const asked = refunds.map((m) => RefundRequested.parse(m.body));
    expect(asked.map((r) => [r.order_id, r.amount_cents])).toEqual([
      [cancelled, 19_900],
      [overpaid, 20_000],
    ]);

    // Handed over, they are gone for good.
    await platform.close();
    platform = await startPlatform(quiet);
    expect(await platform.orders.transport.depth(queues.refundRequestsPayments)).toBe(0);
    const again: IncomingMessage[] = [];
    await platform.orders.transport.consume(queues.refundRequestsPayments, { prefetch: 10 }, (message) => {
      again.push(message);
      return Promise.resolve();
    });
    await sleep(500);
    expect(again).toEqual([]);
  });
});
