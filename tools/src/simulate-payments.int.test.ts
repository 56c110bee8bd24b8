import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { signToken } from '@stockflow/platform';
import { eventually, graphqlClient, type GraphqlClient } from '@stockflow/testing';
import { auditPlatform } from './audit.ts';
import { servicesUnderTest } from './services-under-test.ts';
import { simulatePayments, type PaymentSimulationReport, type Role } from './simulate-payments.ts';

const servicesUnavailable = inject('servicesUnavailable');
const SECRET = randomBytes(32).toString('hex');
/** Short enough for a late payment and the expiries to happen within the test, long enough for the others to be on time on a busy machine. */
const HOLD_SECONDS = 4;

interface OrderView {
  id: string;
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

  beforeAll(async () => {
    ({ ordersUrl, inventoryUrl } = await services.start('simpay', {
      PAYMENT_HOLD_SECONDS: String(HOLD_SECONDS),
      PAYMENT_EXPIRY_INTERVAL_MS: '200',
      CURRENCY: 'EUR',
    }));
    admin = await signToken(SECRET, { sub: 'payments-test', role: 'admin' });
    orders = graphqlClient(ordersUrl, { token: admin });
    const catalog = graphqlClient(inventoryUrl, { token: admin });
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

  const place = async (count: number) => {
    const ids: string[] = [];
    for (let i = 0; i < count; i += 1) {
      const items = productIds.slice(0, 1 + (i % productIds.length)).map((id, line) => ({ productId: String(id), quantity: 1 + line }));
      const data = await orders.data<{ createOrder: { id: string } }>(
        'mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }',
        { input: { customerId: `shopper-${i % 4}`, items } },
      );
      ids.push(data.createOrder.id);
    }
    return ids;
  };
  const view = async (ids: string[]) =>
    (
      await orders.data<{ orders: { nodes: OrderView[] } }>(
        'query($ids: [ID!]) { orders(ids: $ids, first: 500) { nodes { id status reason totalCents currency payments { paymentId amountCents outcome } } } }',
        { ids },
      )
    ).orders.nodes;

  it('pays, fails, repeats and pays late as told; the Order Service keeps each payment once and asks the late and second ones back', async () => {
    let ready: () => void = () => undefined;
    const bound = new Promise<void>((resolve) => (ready = resolve));
    const simulation = simulatePayments({
      amqpUrl,
      ordersUrl,
      token: admin,
      shares: { pay: 0.4, fail: 0.2, duplicate: 0.1, double: 0.1, late: 0.1 },
      delayMs: 300,
      durationMs: 30_000,
      maxOrders: 20,
      lingerMs: 20_000,
      onReady: ready,
    });
    await bound;
    const placed = await place(20);
    const report: PaymentSimulationReport = await simulation;

    expect(report.problems).toEqual([]);
    expect(report.orders.map((o) => o.orderId).sort()).toEqual([...placed].sort());
    expect(report.roles).toEqual({ pay: 8, fail: 4, duplicate: 2, double: 2, late: 2, unpaid: 2 });
    expect(report.orders.filter((o) => o.skipped)).toEqual([]);

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

  it('runs from the command line with the admin token of STOCKFLOW_TOKEN, and exits 0 when every order ends as its role should', async () => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(import.meta.dirname, 'simulate.ts'),
        'payments',
        ...['--orders-url', ordersUrl, '--amqp-url', amqpUrl, '--max-orders', '2', '--delay-ms', '100', '--linger', '20'],
        ...['--pay-share', '1', '--fail-share', '0', '--duplicate-share', '0', '--double-share', '0', '--late-share', '0'],
      ],
      { env: { ...process.env, STOCKFLOW_TOKEN: admin }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    await eventually(
      () => Promise.resolve(out),
      (text) => text.includes('watching orders/order.confirmed'),
      30_000,
      100,
    );
    await place(2);
    expect(await exited, out).toBe(0);
    expect(out).toContain('paid         2 orders (OrderPaid)');
    expect(out).toContain('every order ended as its role should');
  });
});
