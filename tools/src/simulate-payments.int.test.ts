import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { EXCHANGES, QUEUES, ROUTING_KEYS } from '@stockflow/contracts';
import { signToken } from '@stockflow/client';
import { eventually, graphqlClient, rawAmqp, type GraphqlClient } from '@stockflow/testing';
import { auditPlatform } from '@stockflow/loadgen';
import { runTool, servicesUnderTest } from './services-under-test.ts';
import type { PaymentSimulationReport } from './simulate-payments/report.ts';
import type { Role } from './simulate-payments/roles.ts';
import { simulatePayments } from './simulate-payments/run.ts';

const servicesUnavailable = inject('servicesUnavailable');
const SECRET = randomBytes(32).toString('hex');
/** Short enough for a late payment and the expiries to happen within the test, long enough for the others to be on time on a busy machine. */
const HOLD_SECONDS = 4;

interface OrderView {
  id: string;
  customerId: string;
  status: string;
  reason: string | null;
  totalCents: number;
  currency: string;
  payments: { paymentId: string; amountCents: number | null; outcome: string }[];
}

describe.skipIf(servicesUnavailable)('npm run simulate -- payments, against the real broker and services', () => {
  const amqpUrl = inject('amqpUrl');
  const services = servicesUnderTest(amqpUrl, SECRET);
  let admin: string;
  let orders: GraphqlClient;
  let ordersUrl: string;
  let inventoryUrl: string;
  let productIds: number[];
  let catalog: GraphqlClient;

  beforeAll(async () => {
    ({ ordersUrl, inventoryUrl } = await services.start('simpay', {
      PAYMENT_HOLD_SECONDS: String(HOLD_SECONDS),
      PAYMENT_EXPIRY_INTERVAL_MS: '200',
      CURRENCY: 'EUR',
    }));
    admin = await signToken(SECRET, { sub: 'payments-test', role: 'admin' });
    orders = graphqlClient(ordersUrl, { token: admin });
    catalog = graphqlClient(inventoryUrl, { token: admin });
    productIds = [];
    for (const [i, priceCents] of [1_250, 399, 10_000].entries()) {
      const created = await catalog.data<{ createProduct: { id: string } }>(
        'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }',
        { input: { sku: `SIMPAY-${i}`, name: `Paid product ${i}`, priceCents, initialStock: 1_000 } },
      );
      productIds.push(Number(created.createProduct.id));
    }
  });
  afterAll(() => services.stop());

  const place = async (customerId: string, productId: number) =>
    (
      await orders.data<{ createOrder: { id: string } }>('mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }', {
        input: { customerId, items: [{ productId: String(productId), quantity: 1 }] },
      })
    ).createOrder.id;
  const product = async (sku: string, initialStock: number) =>
    Number(
      (
        await catalog.data<{ createProduct: { id: string } }>(
          'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }',
          { input: { sku, name: sku, priceCents: 500, initialStock } },
        )
      ).createProduct.id,
    );
  const stockOf = async (id: number) =>
    (
      await catalog.data<{ product: { availableStock: number; reservedStock: number; soldStock: number } }>(
        'query($id: ID!) { product(id: $id) { availableStock reservedStock soldStock } }',
        { id: String(id) },
      )
    ).product;
  const view = async (ids: string[]) =>
    (
      await orders.data<{ orders: { nodes: OrderView[] } }>(
        'query($ids: [ID!]) { orders(ids: $ids, first: 500) { nodes { id customerId status reason totalCents currency payments { paymentId amountCents outcome } } } }',
        { ids },
      )
    ).orders.nodes;

  it('pays, fails, repeats and pays late as told; the Order Service keeps each payment once and asks the late and second ones back', async () => {
    const report: PaymentSimulationReport = await simulatePayments({
      amqpUrl,
      ordersUrl,
      token: admin,
      products: productIds,
      orders: 20,
      shares: { pay: 0.4, fail: 0.2, duplicate: 0.1, double: 0.1, late: 0.1 },
      delayMs: 300,
      timeoutMs: 50_000,
      keep: true,
    });
    const placed = report.orders.map((o) => o.orderId);

    expect(report.problems).toEqual([]);
    expect(new Set(placed).size).toBe(20);
    expect(report.cancelledAtEnd).toEqual([]);
    expect(report.roles).toEqual({ pay: 8, fail: 4, duplicate: 2, double: 2, late: 2, unpaid: 2 });
    expect(report.orders.filter((o) => o.skipped)).toEqual([]);
    expect((await view(placed)).map((o) => o.customerId)).toEqual(placed.map(() => report.customerId));

    // The unpaid holds run out too; then every order is where its role leaves it.
    const finals = await eventually(
      () => view(placed),
      (list) => list.every((o) => o.status !== 'CONFIRMED'),
      30_000,
      250,
    );
    const byId = new Map(finals.map((o) => [o.id, o]));
    const outcomes = (o: OrderView) => o.payments.map((p) => p.outcome).sort();
    const expiry = /^Payment not received by /;
    const seen: Record<string, number> = {};
    for (const simulated of report.orders) {
      const o = byId.get(simulated.orderId) as OrderView;
      const role: Role = simulated.role;
      const retried = simulated.payments.length === 2;
      const kind = role === 'fail' ? (retried ? 'fail, then paid' : 'fail, gave up') : role;
      seen[kind] = (seen[kind] ?? 0) + 1;
      const expected = {
        pay: { status: 'PAID', outcomes: ['PAID'] },
        'fail, then paid': { status: 'PAID', outcomes: ['FAILED', 'PAID'] },
        'fail, gave up': { status: 'CANCELLED', outcomes: ['FAILED'] },
        // Sent twice under one payment id: recorded once.
        duplicate: { status: 'PAID', outcomes: ['PAID'] },
        double: { status: 'PAID', outcomes: ['PAID', 'REFUND_REQUESTED'] },
        late: { status: 'CANCELLED', outcomes: ['REFUND_REQUESTED'] },
        unpaid: { status: 'CANCELLED', outcomes: [] },
      }[kind];
      expect({ id: o.id, kind, status: o.status, outcomes: outcomes(o) }).toEqual({ id: o.id, kind, ...expected });
      if (o.status === 'CANCELLED') expect(o.reason).toMatch(expiry);
      for (const p of o.payments.filter((x) => x.outcome !== 'FAILED')) expect(p.amountCents).toBe(o.totalCents);
    }
    expect(seen).toEqual({ pay: 8, 'fail, then paid': 2, 'fail, gave up': 2, duplicate: 2, double: 2, late: 2, unpaid: 2 });

    // What it was asked to give back: the late payments and the second charges, each for the order's total.
    const askedBack = report.orders.flatMap((o) => o.refunds.map((r) => ({ role: o.role, order: r.order_id, cents: r.amount_cents })));
    expect(askedBack.map((r) => r.role).sort()).toEqual(['double', 'double', 'late', 'late']);
    for (const r of askedBack) expect(r.cents).toBe(byId.get(r.order)?.totalCents);
    expect(report.refundedCents).toEqual({ EUR: askedBack.reduce((sum, r) => sum + r.cents, 0) });
    expect(report.paid).toBe(8 + 2 + 2 + 2);

    // And the books balance: expired orders' units released, the paid ones' held, no money kept by a cancelled order.
    const audit = await eventually(
      () => auditPlatform({ orders: ordersUrl, inventory: inventoryUrl, token: admin }),
      (a) => a.ok,
      15_000,
      250,
    );
    expect(audit.orders).toMatchObject({ PAID: 14, CANCELLED: 6, CONFIRMED: 0 });
  });

  /** A quick run: every order paid once, on time, unless the shares say otherwise. */
  const run = (options: Partial<Parameters<typeof simulatePayments>[0]> = {}) =>
    simulatePayments({
      amqpUrl,
      ordersUrl,
      token: admin,
      products: productIds,
      orders: 2,
      shares: { pay: 1, fail: 0, duplicate: 0, double: 0, late: 0 },
      delayMs: 50,
      timeoutMs: 30_000,
      ...options,
    });

  it('takes nothing from the refund queue of the payment service: a refund there stays, its own too, and it reads copies of them', async () => {
    const amqp = await rawAmqp(amqpUrl);
    try {
      await amqp.drainQueue(QUEUES.refundRequestsPayments);
      const another = {
        event: 'RefundRequested',
        payment_id: 'PSP-another',
        order_id: 'ORD-another',
        amount_cents: 100,
        currency: 'EUR',
        reason: 'a refund for the real payment service',
      };
      await amqp.publish(EXCHANGES.orders, ROUTING_KEYS.refundRequested, another);

      const report = await run({ shares: { pay: 0, fail: 0, duplicate: 0, double: 1, late: 0 }, keep: true });
      expect(report.problems).toEqual([]);
      const ownRefunds = report.refunds.map((r) => r.payment_id).sort();
      expect(ownRefunds).toHaveLength(2);

      // Everything asked of the payment service is still there for it: the refund of another and the simulator's own.
      const queued = (await amqp.drainQueue(QUEUES.refundRequestsPayments)).map((m) => m.json as { payment_id: string });
      expect(queued.map((r) => r.payment_id).sort()).toEqual(['PSP-another', ...ownRefunds].sort());
    } finally {
      await amqp.close();
    }
  });

  it('pays no order it did not place, not even one confirmed while it places its own', async () => {
    let another: Promise<string> | undefined;
    // Paying a second after each confirmation keeps it watching well after the other order is confirmed.
    const report = await run({
      orders: 3,
      delayMs: 1_000,
      onReady: () => {
        another = place('bystander', productIds[0] as number);
      },
    });
    const id = await (another as Promise<string>);
    expect(report.problems).toEqual([]);
    expect(report.orders.map((o) => o.orderId)).not.toContain(id);
    expect(report.orders.filter((o) => o.paid)).toHaveLength(3);

    // Confirmed while it watched, and left alone: no payment, no cancellation at the end (its own hold may have run out since).
    const [bystander] = await view([id]);
    expect(bystander?.status).not.toBe('PENDING');
    expect(bystander?.payments).toEqual([]);
    if (bystander?.status !== 'CONFIRMED') {
      expect(bystander?.status).toBe('CANCELLED');
      expect(bystander?.reason).toMatch(/^Payment not received by /);
    }
  });

  it('leaves the stock as it found it: at the end it cancels its orders still holding stock, paid or not', async () => {
    const own = await product('SIMPAY-CLEANUP', 10);
    const report = await run({ orders: 4, products: [own], shares: { pay: 0.5, fail: 0, duplicate: 0, double: 0, late: 0 } });
    expect(report.problems).toEqual([]);
    expect(report.roles).toMatchObject({ pay: 2, unpaid: 2 });
    expect(report.cancelledAtEnd.sort()).toEqual(report.orders.map((o) => o.orderId).sort());
    const finals = await view(report.orders.map((o) => o.orderId));
    expect(finals.map((o) => o.status)).toEqual(['CANCELLED', 'CANCELLED', 'CANCELLED', 'CANCELLED']);
    // A paid one's payment is asked back.
    expect(finals.flatMap((o) => o.payments.map((p) => p.outcome)).sort()).toEqual(['REFUND_REQUESTED', 'REFUND_REQUESTED']);
    await eventually(
      () => stockOf(own),
      (now) => now.availableStock === 10 && now.reservedStock === 0 && now.soldStock === 0,
      15_000,
      250,
    );
  });

  it('runs from the command line with the admin token of STOCKFLOW_TOKEN, exits 0 when every order ends as its role should, and cancels what holds stock', async () => {
    const { code, out } = await runTool(
      'simulate.ts',
      [
        'payments',
        ...['--orders-url', ordersUrl, '--amqp-url', amqpUrl, '--orders', '2', '--products', productIds.join(','), '--delay-ms', '100'],
        ...['--pay-share', '1', '--fail-share', '0', '--duplicate-share', '0', '--double-share', '0', '--late-share', '0'],
      ],
      { STOCKFLOW_TOKEN: admin },
    );
    expect(code, out).toBe(0);
    expect(out).toContain('paid         2 orders (OrderPaid)');
    expect(out).toContain('cancelled    2 of its orders still holding stock');
    expect(out).toContain('every order ended as its role should');
  });
});
