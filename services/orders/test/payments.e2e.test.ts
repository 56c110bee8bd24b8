import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { DEAD_LETTER_REASON_HEADER, EXCHANGES, queues, ROUTING_KEYS, type RefundRequested } from '@stockflow/contracts';
import { createLogger, metricSum } from '@stockflow/observability';
import type { RunningService } from '@stockflow/runtime';
import { createTestDatabase, eventually, graphqlClient, rawAmqp, type GraphqlClient, type TestDatabase } from '@stockflow/testing';
import { loadOrdersConfig } from '../src/config.ts';
import { HOLD_EXPIRY_BATCH } from '../src/hold-expiry.ts';
import { startOrdersService } from '../src/service.ts';
import { serviceEnv, startInventory } from './services.ts';

const servicesUnavailable = inject('servicesUnavailable');
const logger = createLogger({ name: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });

interface PaymentView {
  paymentId: string;
  amountCents: number | null;
  currency: string | null;
  outcome: 'PAID' | 'FAILED' | 'REFUND_REQUESTED';
  reason: string | null;
}
interface OrderView {
  id: string;
  status: string;
  reason: string | null;
  totalCents: number | null;
  currency: string | null;
  paymentDueAt: string | null;
  paidAt: string | null;
  items: { productId: string; quantity: number; unitPriceCents: number | null }[];
  payments: PaymentView[];
}
const ORDER_FIELDS = `id status reason totalCents currency paymentDueAt paidAt
  items { productId quantity unitPriceCents } payments { paymentId amountCents currency outcome reason }`;

describe.skipIf(servicesUnavailable)('Payments and expiring holds, on RabbitMQ and PostgreSQL', () => {
  let ordersDb: TestDatabase;
  let inventoryDb: TestDatabase;
  const running: RunningService[] = [];
  const amqpUrl = inject('amqpUrl');
  let amqp: Awaited<ReturnType<typeof rawAmqp>>;
  let inventory: GraphqlClient;

  const startOrders = async (env: Record<string, string> = {}) => {
    const service = await startOrdersService(
      loadOrdersConfig({
        ...serviceEnv(ordersDb, amqpUrl),
        CURRENCY: 'EUR',
        PAYMENT_EXPIRY_INTERVAL_MS: '200',
        ...env,
      }),
      logger,
    );
    running.push(service);
    return graphqlClient(`http://127.0.0.1:${service.port}/graphql`);
  };
  const product = async (priceCents: number | null, stock: number) =>
    Number(
      (
        await inventory.data<{ createProduct: { id: string } }>(
          'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }',
          { input: { sku: `PAY-${Math.random().toString(36).slice(2)}`, name: 'Paid thing', priceCents, initialStock: stock } },
        )
      ).createProduct.id,
    );
  const reservedOf = async (productId: number) =>
    (await inventory.data<{ product: { reservedStock: number } }>(`{ product(id: "${productId}") { reservedStock } }`)).product
      .reservedStock;
  const order = async (gql: GraphqlClient, id: string) =>
    (await gql.data<{ order: OrderView }>(`query($id: ID!) { order(id: $id) { ${ORDER_FIELDS} } }`, { id })).order;
  const place = async (gql: GraphqlClient, items: { productId: number; quantity: number }[]) =>
    (
      await gql.data<{ createOrder: { id: string } }>('mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }', {
        input: { customerId: 'payer', items: items.map((i) => ({ productId: String(i.productId), quantity: i.quantity })) },
      })
    ).createOrder.id;
  /** `n` orders of one unit of `productId`, once each is CONFIRMED. */
  const placeConfirmed = async (gql: GraphqlClient, productId: number, n: number) => {
    const ids: string[] = [];
    for (let i = 0; i < n; i += 1) ids.push(await place(gql, [{ productId, quantity: 1 }]));
    for (const id of ids) await until(gql, id, 'CONFIRMED');
    return ids;
  };
  /** One statement on the orders database, as an operator (or a migration) would run it. */
  const sql = async <R extends object>(text: string, params: unknown[] = []) => {
    const db = new pg.Client({ connectionString: ordersDb.url });
    await db.connect();
    try {
      return (await db.query<R>(text, params)).rows;
    } finally {
      await db.end();
    }
  };
  const until = (gql: GraphqlClient, id: string, status: string) =>
    eventually(
      () => order(gql, id),
      (o) => o.status === status,
      30_000,
    );
  const recordPayment = (gql: GraphqlClient, input: { orderId: string; paymentId: string; amountCents: number; currency: string }) =>
    gql.request<{ recordPayment: PaymentView }>(
      'mutation($input: RecordPaymentInput!) { recordPayment(input: $input) { paymentId amountCents currency outcome reason createdAt } }',
      { input },
    );
  const publishPayment = (body: object) =>
    amqp.publish(
      EXCHANGES.payments,
      (body as { event: string }).event === 'PaymentFailed' ? ROUTING_KEYS.paymentFailed : ROUTING_KEYS.paymentSucceeded,
      body,
    );

  beforeAll(async () => {
    amqp = await rawAmqp(amqpUrl);
  });
  beforeEach(async () => {
    ordersDb = await createTestDatabase('payments_orders');
    inventoryDb = await createTestDatabase('payments_inventory');
    const started = await startInventory(inventoryDb, amqpUrl);
    running.push(started.service);
    inventory = started.gql;
  });
  afterEach(async () => {
    while (running.length > 0) await running.pop()?.close();
    for (const q of Object.values(queues)) await amqp.connection.queuePurge(q.queue).catch(() => undefined);
    await ordersDb.drop();
    await inventoryDb.drop();
  });
  afterAll(async () => {
    await amqp.close();
  });

  it('prices a confirmed order, holds it until paymentDueAt, takes the payment once, and fulfils it only when paid', async () => {
    const orders = await startOrders({ PAYMENT_HOLD_SECONDS: '600' });
    const paidEvents = await amqp.listen(EXCHANGES.orders, ROUTING_KEYS.orderPaid);
    const [tv, cable] = [await product(19_900, 5), await product(900, 50)];
    const id = await place(orders, [
      { productId: tv, quantity: 1 },
      { productId: cable, quantity: 3 },
    ]);
    const confirmed = await until(orders, id, 'CONFIRMED');
    expect(confirmed).toMatchObject({ totalCents: 19_900 + 3 * 900, currency: 'EUR', paidAt: null, payments: [] });
    expect(confirmed.items.map((l) => l.unitPriceCents)).toEqual([19_900, 900]);
    const hold = Date.parse(confirmed.paymentDueAt as string) - Date.now();
    expect(hold).toBeGreaterThan(590_000);
    expect(hold).toBeLessThanOrEqual(600_000);

    // Not paid yet: it cannot be shipped, and the error says what is missing (not a status).
    const early = await orders.request(`mutation { fulfillOrder(id: "${id}") { id } }`);
    expect(early.errors?.[0]?.extensions).toEqual({ code: 'PAYMENT_REQUIRED', status: 'CONFIRMED', paymentDueAt: confirmed.paymentDueAt });
    expect(early.errors?.[0]?.message).toBe(`cannot fulfil order ${id}: it is not paid yet (payment due by ${confirmed.paymentDueAt})`);

    const payment = { orderId: id, paymentId: `pay-${id}`, amountCents: 22_600, currency: 'EUR' };
    const first = await recordPayment(orders, payment);
    expect(first.data?.recordPayment).toMatchObject({ outcome: 'PAID', amountCents: 22_600 });
    // The provider calls back twice: the same payment is recorded once.
    const again = await recordPayment(orders, payment);
    expect(again.data?.recordPayment.outcome).toBe('PAID');
    const paid = await order(orders, id);
    expect(paid.status).toBe('PAID');
    expect(paid.paidAt).not.toBeNull();
    expect(paid.payments).toHaveLength(1);
    await paidEvents.waitFor(1);
    expect(paidEvents.received[0]?.json).toMatchObject({
      event: 'OrderPaid',
      order_id: id,
      payment_id: payment.paymentId,
      amount_cents: 22_600,
      currency: 'EUR',
    });

    const shipped = await orders.data<{ fulfillOrder: { status: string } }>(`mutation { fulfillOrder(id: "${id}") { status } }`);
    expect(shipped.fulfillOrder.status).toBe('FULFILLED');
    await eventually(
      () => reservedOf(tv),
      (r) => r === 0,
    );
  });

  it('applies payments from the broker by the contract: duplicates once, failures recorded, and asks back money it cannot keep', async () => {
    const orders = await startOrders({ PAYMENT_HOLD_SECONDS: '600' });
    const refunds = await amqp.listen(EXCHANGES.orders, ROUTING_KEYS.refundRequested);
    const thing = await product(1_000, 10);
    const id = await place(orders, [{ productId: thing, quantity: 2 }]);
    await until(orders, id, 'CONFIRMED');

    const succeeded = (paymentId: string, amount: number, currency = 'EUR', orderId = id) => ({
      event: 'PaymentSucceeded',
      payment_id: paymentId,
      order_id: orderId,
      amount_cents: amount,
      currency,
      occurred_at: new Date().toISOString(),
    });
    await publishPayment({ event: 'PaymentFailed', payment_id: 'p-declined', order_id: id, reason: 'card declined' });
    await publishPayment(succeeded('p-short', 1_999));
    await publishPayment(succeeded('p-dollars', 2_000, 'USD'));
    await publishPayment(succeeded('p-unknown', 500, 'EUR', 'ORD-nobody'));
    await refunds.waitFor(3);
    // None of those paid it: it is still waiting.
    expect((await order(orders, id)).status).toBe('CONFIRMED');

    await publishPayment(succeeded('p-good', 2_000));
    await publishPayment(succeeded('p-good', 2_000));
    await publishPayment(succeeded('p-second', 2_000));
    await until(orders, id, 'PAID');
    await refunds.waitFor(4);
    const settled = await eventually(
      () => order(orders, id),
      (o) => o.payments.length === 5,
    );
    const byId = Object.fromEntries(settled.payments.map((p) => [p.paymentId, p]));
    expect(byId['p-declined']).toMatchObject({ outcome: 'FAILED', reason: 'card declined', amountCents: null });
    expect(byId['p-short']?.outcome).toBe('REFUND_REQUESTED');
    expect(byId['p-short']?.reason).toContain("does not match the order's total of 2000 EUR");
    expect(byId['p-dollars']?.outcome).toBe('REFUND_REQUESTED');
    expect(byId['p-good']?.outcome).toBe('PAID');
    expect(byId['p-second']).toMatchObject({ outcome: 'REFUND_REQUESTED', reason: 'the order is already paid' });

    // Every refund asked for money taken that the shop did not keep, exactly once each.
    await new Promise((r) => setTimeout(r, 500));
    const asked = refunds.received.map((m) => m.json as RefundRequested);
    expect(asked.map((r) => r.payment_id).sort()).toEqual(['p-dollars', 'p-second', 'p-short', 'p-unknown']);
    expect(asked.find((r) => r.payment_id === 'p-unknown')).toMatchObject({
      order_id: 'ORD-nobody',
      amount_cents: 500,
      reason: 'no such order',
    });
    // Exactly the documented fields, and each is also held for the payment service in the queue
    // Stockflow declares for it (published mandatory, so it cannot be dropped on the way).
    for (const r of asked) {
      expect(Object.keys(r).sort()).toEqual([
        'amount_cents',
        'currency',
        'event',
        'event_id',
        'occurred_at',
        'order_id',
        'payment_id',
        'reason',
      ]);
    }
    const held = await amqp.drainQueue(queues.refundRequestsPayments.queue);
    expect(held.map((m) => (m.json as RefundRequested).payment_id).sort()).toEqual(['p-dollars', 'p-second', 'p-short', 'p-unknown']);

    // The refunds asked for, listed for the operator: the latest first, with what and why.
    const { refundRequests } = await orders.data<{ refundRequests: (PaymentView & { orderId: string })[] }>(
      '{ refundRequests(first: 10) { paymentId orderId amountCents currency outcome reason } }',
    );
    expect(refundRequests[0]).toEqual({
      paymentId: 'p-second',
      orderId: id,
      amountCents: 2_000,
      currency: 'EUR',
      outcome: 'REFUND_REQUESTED',
      reason: 'the order is already paid',
    });
    expect(refundRequests.map((p) => p.paymentId).sort()).toEqual(['p-dollars', 'p-second', 'p-short', 'p-unknown']);
    expect((await orders.data<{ refundRequests: unknown[] }>('{ refundRequests(first: 2) { paymentId } }')).refundRequests).toHaveLength(2);
    const tooMany = await orders.request('{ refundRequests(first: 101) { paymentId } }');
    expect(tooMany.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('takes a provider retry of a failed payment id, refuses one id for two orders, and parks a payment that breaks the contract', async () => {
    const orders = await startOrders({ PAYMENT_HOLD_SECONDS: '600' });
    const paidEvents = await amqp.listen(EXCHANGES.orders, ROUTING_KEYS.orderPaid);
    const thing = await product(1_000, 10);
    const [first, second] = (await placeConfirmed(orders, thing, 2)) as [string, string];

    // The card was declined, then the provider retried the same attempt and it went through.
    await publishPayment({ event: 'PaymentFailed', payment_id: 'p-retried', order_id: first, reason: 'card declined' });
    await eventually(
      () => order(orders, first),
      (o) => o.payments.length === 1,
    );
    await publishPayment({ event: 'PaymentSucceeded', payment_id: 'p-retried', order_id: first, amount_cents: 1_000, currency: 'EUR' });
    const paid = await until(orders, first, 'PAID');
    expect(paid.payments).toEqual([expect.objectContaining({ paymentId: 'p-retried', outcome: 'PAID', amountCents: 1_000 })]);
    await paidEvents.waitFor(1);
    expect(Object.keys(paidEvents.received[0]?.json as object).sort()).toEqual([
      'amount_cents',
      'currency',
      'event',
      'event_id',
      'occurred_at',
      'order_id',
      'payment_id',
    ]);

    // The same id for another order files no money under either.
    const reused = await recordPayment(orders, { orderId: second, paymentId: 'p-retried', amountCents: 1_000, currency: 'EUR' });
    expect(reused.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    expect(reused.errors?.[0]?.message).toBe(`payment p-retried was recorded for order ${first}, not ${second}`);
    expect((await order(orders, second)).payments).toEqual([]);
    expect((await order(orders, first)).payments).toHaveLength(1);

    // Not the contract: parked with the reason, nothing recorded.
    await publishPayment({ event: 'PaymentSucceeded', payment_id: 'p-bad', order_id: second, amount_cents: -1, currency: 'eur' });
    const parked = await eventually(
      () => amqp.drainQueue(queues.paymentOrders.deadLetterQueue),
      (m) => m.length > 0,
    );
    expect(String(parked[0]?.headers[DEAD_LETTER_REASON_HEADER])).toMatch(/^body does not match the contract: amount_cents/);
    expect((await order(orders, second)).status).toBe('CONFIRMED');
  });

  it('shows a parked payment event as the money it stands for: in the dead-letter view and in the metrics its alert reads', async () => {
    const orders = await startOrders({ PAYMENT_HOLD_SECONDS: '600', RETRY_MAX_ATTEMPTS: '1' });
    const port = running.at(-1)?.port as number;
    const refunds = await amqp.listen(EXCHANGES.orders, ROUTING_KEYS.refundRequested);
    const dlqs = [queues.paymentOrders.deadLetterQueue, queues.stockOrders.deadLetterQueue];
    for (const q of dlqs) await amqp.drainQueue(q);
    try {
      const thing = await product(1_000, 10);
      const [first, second] = (await placeConfirmed(orders, thing, 2)) as [string, string];
      await recordPayment(orders, { orderId: first, paymentId: 'p-first', amountCents: 1_000, currency: 'EUR' });

      // Money taken, with a body that breaks the contract; money taken under another order's
      // payment id; a body nobody can read; a failed attempt that breaks the contract.
      await publishPayment({
        event: 'PaymentSucceeded',
        payment_id: 'p-lowercase',
        order_id: second,
        amount_cents: 1_000,
        currency: 'eur',
      });
      await publishPayment({ event: 'PaymentSucceeded', payment_id: 'p-first', order_id: second, amount_cents: 1_000, currency: 'EUR' });
      await amqp.publish(EXCHANGES.payments, ROUTING_KEYS.paymentSucceeded, 'took 10.00 EUR for ORD-?', { contentType: 'text/plain' });
      await publishPayment({ event: 'PaymentFailed', payment_id: 'p-failed', order_id: second, reason: '' });
      // And an inventory answer nobody can read: parked too, but no money.
      await amqp.publish(EXCHANGES.inventory, ROUTING_KEYS.stockReserved, 'not an answer', { contentType: 'text/plain' });

      type Parked = { reason: string; payment: Record<string, unknown> | null };
      const deadLetters = (queue: string) =>
        orders
          .data<{ deadLetters: Parked[] }>(
            `query($q: String!) { deadLetters(queue: $q) { reason payment { event paymentId orderId amountCents currency moneyTaken } } }`,
            { q: queue },
          )
          .then((d) => d.deadLetters);
      const parked = await eventually(
        () => deadLetters(queues.paymentOrders.queue),
        (list) => list.length === 4,
        30_000,
      );
      const byReason = (pattern: RegExp) => parked.find((d) => pattern.test(d.reason))?.payment;
      expect(byReason(/currency/)).toEqual({
        event: 'PaymentSucceeded',
        paymentId: 'p-lowercase',
        orderId: second,
        amountCents: 1_000,
        currency: 'eur',
        moneyTaken: true,
      });
      expect(byReason(/was recorded for order/)).toEqual({
        event: 'PaymentSucceeded',
        paymentId: 'p-first',
        orderId: second,
        amountCents: 1_000,
        currency: 'EUR',
        moneyTaken: true,
      });
      expect(byReason(/not JSON/)).toEqual({
        event: null,
        paymentId: null,
        orderId: null,
        amountCents: null,
        currency: null,
        moneyTaken: null,
      });
      expect(byReason(/reason/)).toMatchObject({ event: 'PaymentFailed', paymentId: 'p-failed', moneyTaken: false });
      const [answer] = await eventually(
        () => deadLetters(queues.stockOrders.queue),
        (list) => list.length === 1,
      );
      expect(answer?.payment).toBeNull();

      const metrics = await eventually(
        () => fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text()),
        (text) => metricSum(text, 'stockflow_dead_letter_messages', { queue: queues.paymentOrders.queue }) === 4,
      );
      expect(metricSum(metrics, 'stockflow_payments_parked_total', { money: 'taken' })).toBe(2);
      expect(metricSum(metrics, 'stockflow_payments_parked_total', { money: 'unknown' })).toBe(1);
      expect(metricSum(metrics, 'stockflow_payments_parked_total', { money: 'none' })).toBe(1);
      expect(metricSum(metrics, 'stockflow_payments_parked_cents_total', { currency: 'EUR' })).toBe(2_000);
      expect(metricSum(metrics, 'stockflow_payments_parked_cents_total')).toBe(2_000);

      // Nothing was filed under the second order, and nobody was asked for a refund: the money is
      // the operator's to act on, which is why it must show.
      await new Promise((r) => setTimeout(r, 500));
      expect(refunds.received).toEqual([]);
      expect(await order(orders, second)).toMatchObject({ status: 'CONFIRMED', payments: [] });
    } finally {
      for (const q of dlqs) await amqp.drainQueue(q);
    }
  });

  it('answers identical provider callbacks arriving at once with the one payment they record', async () => {
    const orders = await startOrders({ PAYMENT_HOLD_SECONDS: '600' });
    const thing = await product(700, 5);
    const id = await place(orders, [{ productId: thing, quantity: 1 }]);
    await until(orders, id, 'CONFIRMED');
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => recordPayment(orders, { orderId: id, paymentId: `cb-${id}`, amountCents: 700, currency: 'EUR' })),
    );
    for (const answer of answers) {
      expect(answer.errors).toBeUndefined();
      expect(answer.data?.recordPayment.outcome).toBe('PAID');
    }
    expect((await order(orders, id)).payments).toHaveLength(1);
  });

  it('answers identical callbacks at once for an order that does not exist, or one cancelled, with one record and one refund each', async () => {
    const [a, b] = [await startOrders({ PAYMENT_HOLD_SECONDS: '600' }), await startOrders({ PAYMENT_HOLD_SECONDS: '600' })];
    const refunds = await amqp.listen(EXCHANGES.orders, ROUTING_KEYS.refundRequested);
    const thing = await product(400, 5);
    const [cancelled] = (await placeConfirmed(a, thing, 1)) as [string];
    await a.data(`mutation { cancelOrder(id: "${cancelled}") { id } }`);
    const callbacks = [
      { orderId: `ORD-nobody-${cancelled}`, paymentId: `at-once-unknown-${cancelled}`, amountCents: 900, currency: 'EUR' },
      { orderId: cancelled, paymentId: `at-once-cancelled-${cancelled}`, amountCents: 400, currency: 'EUR' },
    ];
    for (const input of callbacks) {
      // Sixteen at once, over two instances, and the same event from the broker among them.
      const [answers] = await Promise.all([
        Promise.all(Array.from({ length: 16 }, (_, i) => recordPayment(i % 2 ? a : b, input))),
        publishPayment({
          event: 'PaymentSucceeded',
          payment_id: input.paymentId,
          order_id: input.orderId,
          amount_cents: input.amountCents,
          currency: 'EUR',
        }),
      ]);
      const later = await recordPayment(a, input);
      for (const answer of [...answers, later]) {
        expect(answer.errors, JSON.stringify(answer.errors)).toBeUndefined();
        expect(answer.data?.recordPayment).toEqual(answers[0]?.data?.recordPayment);
      }
      expect(answers[0]?.data?.recordPayment).toMatchObject({ paymentId: input.paymentId, outcome: 'REFUND_REQUESTED' });
    }
    const [recorded] = await sql<{ n: number }>('SELECT count(*)::int AS n FROM payments WHERE payment_id = ANY($1)', [
      callbacks.map((c) => c.paymentId),
    ]);
    expect(recorded?.n).toBe(2);
    await refunds.waitFor(2);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(refunds.received.map((m) => (m.json as RefundRequested).payment_id).sort()).toEqual(callbacks.map((c) => c.paymentId).sort());
  });

  it('fulfils directly an order confirmed without a hold (before payments, or while they were off), and lets payments-off ignore an old hold', async () => {
    const thing = await product(300, 5);
    const withHolds = await startOrders({ PAYMENT_HOLD_SECONDS: '600' });
    const [older, heldWhenOff] = (await placeConfirmed(withHolds, thing, 2)) as [string, string];
    // As an order confirmed before the payments migration: no hold, no total.
    await sql(`UPDATE orders SET payment_due_at = NULL, total_cents = NULL, currency = NULL WHERE id = $1`, [older]);
    const shipped = await withHolds.data<{ fulfillOrder: { status: string } }>(`mutation { fulfillOrder(id: "${older}") { status } }`);
    expect(shipped.fulfillOrder.status).toBe('FULFILLED');

    // Payments switched off: a hold that ran out meanwhile (run out here once the instance that
    // would have swept it is gone) neither expires nor refuses a payment.
    await running.pop()?.close();
    await sql(`UPDATE orders SET payment_due_at = now() - interval '1 minute' WHERE id = $1`, [heldWhenOff]);
    const off = await startOrders({ PAYMENT_HOLD_SECONDS: '0' });
    const late = await recordPayment(off, { orderId: heldWhenOff, paymentId: `off-${heldWhenOff}`, amountCents: 300, currency: 'EUR' });
    expect(late.data?.recordPayment.outcome).toBe('PAID');
    const direct = await off.data<{ fulfillOrder: { status: string } }>(`mutation { fulfillOrder(id: "${heldWhenOff}") { status } }`);
    expect(direct.fulfillOrder.status).toBe('FULFILLED');
  });

  it('cancels an unpaid order when its hold runs out, puts its units back on sale, and refunds a payment that comes too late', async () => {
    const orders = await startOrders({ PAYMENT_HOLD_SECONDS: '1' });
    const thing = await product(4_200, 3);
    const id = await place(orders, [{ productId: thing, quantity: 2 }]);
    const confirmed = await until(orders, id, 'CONFIRMED');
    expect(await reservedOf(thing)).toBe(2);
    const expired = await until(orders, id, 'CANCELLED');
    expect(expired.reason).toBe(`Payment not received by ${new Date(confirmed.paymentDueAt as string).toISOString()}`);
    await eventually(
      () => reservedOf(thing),
      (r) => r === 0,
    );
    const late = await recordPayment(orders, { orderId: id, paymentId: 'late', amountCents: 8_400, currency: 'EUR' });
    expect(late.data?.recordPayment).toMatchObject({ outcome: 'REFUND_REQUESTED', reason: 'the order is cancelled' });
    expect((await order(orders, id)).status).toBe('CANCELLED');
  });

  it('refunds a payment that arrives after the hold ran out, before the sweep got to the order, and cancels the order then', async () => {
    // No sweep runs during this test: the payment alone finds the hold over.
    const orders = await startOrders({ PAYMENT_HOLD_SECONDS: '600', PAYMENT_EXPIRY_INTERVAL_MS: '3600000' });
    const paidEvents = await amqp.listen(EXCHANGES.orders, ROUTING_KEYS.orderPaid);
    const refunds = await amqp.listen(EXCHANGES.orders, ROUTING_KEYS.refundRequested);
    const thing = await product(650, 5);
    const [overHttp, fromBroker] = (await placeConfirmed(orders, thing, 2)) as [string, string];
    // Due a moment ago by the database's clock, the one the service judges by.
    await sql(`UPDATE orders SET payment_due_at = now() - interval '50 milliseconds' WHERE id = ANY($1)`, [[overHttp, fromBroker]]);
    const [due] = await sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM orders WHERE id = ANY($1) AND status = 'CONFIRMED' AND payment_due_at < now()`,
      [[overHttp, fromBroker]],
    );
    expect(due?.n).toBe(2);
    const answer = await recordPayment(orders, { orderId: overHttp, paymentId: `late-${overHttp}`, amountCents: 650, currency: 'EUR' });
    await publishPayment({
      event: 'PaymentSucceeded',
      payment_id: `late-${fromBroker}`,
      order_id: fromBroker,
      amount_cents: 650,
      currency: 'EUR',
    });
    const expected = { outcome: 'REFUND_REQUESTED', reason: 'the payment hold expired before the payment arrived' };
    expect(answer.data?.recordPayment).toMatchObject(expected);
    for (const id of [overHttp, fromBroker]) {
      const cancelled = await until(orders, id, 'CANCELLED');
      expect(cancelled.paidAt).toBeNull();
      expect(cancelled.reason).toBe(`Payment not received by ${new Date(cancelled.paymentDueAt as string).toISOString()}`);
      expect(cancelled.payments).toEqual([expect.objectContaining({ paymentId: `late-${id}`, amountCents: 650, ...expected })]);
    }
    await refunds.waitFor(2);
    await new Promise((r) => setTimeout(r, 500));
    expect(paidEvents.received).toEqual([]);
    await eventually(
      () => reservedOf(thing),
      (r) => r === 0,
    );
  });

  it('counts the orders cancelled for want of payment, and not one cancelled by hand with a reason that reads alike', async () => {
    const orders = await startOrders({ PAYMENT_HOLD_SECONDS: '600' });
    const thing = await product(500, 5);
    const [unpaid, withdrawn] = [
      await place(orders, [{ productId: thing, quantity: 1 }]),
      await place(orders, [{ productId: thing, quantity: 1 }]),
    ];
    await until(orders, unpaid, 'CONFIRMED');
    await until(orders, withdrawn, 'CONFIRMED');
    await orders.data(`mutation { cancelOrder(id: "${withdrawn}", reason: "Payment not received by the bank, says the customer") { id } }`);
    // Its hold is brought forward rather than waited out: a hold short enough to wait for could run
    // out on the other order too before it is cancelled by hand.
    await sql(`UPDATE orders SET payment_due_at = now() WHERE id = $1`, [unpaid]);
    await until(orders, unpaid, 'CANCELLED');
    const counts = await orders.data<{ expiredOrderCount: number; orderCounts: { status: string; count: number }[] }>(
      '{ expiredOrderCount orderCounts { status count } }',
    );
    expect(counts.orderCounts.find((c) => c.status === 'CANCELLED')?.count).toBe(2);
    expect(counts.expiredOrderCount).toBe(1);
  });

  it('refunds the payment of a paid order that is cancelled, and releases its units', async () => {
    const orders = await startOrders({ PAYMENT_HOLD_SECONDS: '600' });
    const refunds = await amqp.listen(EXCHANGES.orders, ROUTING_KEYS.refundRequested);
    const thing = await product(750, 4);
    const id = await place(orders, [{ productId: thing, quantity: 4 }]);
    await until(orders, id, 'CONFIRMED');
    await recordPayment(orders, { orderId: id, paymentId: 'paid-then-cancelled', amountCents: 3_000, currency: 'EUR' });
    await until(orders, id, 'PAID');
    const cancelled = await orders.data<{ cancelOrder: OrderView }>(`mutation { cancelOrder(id: "${id}") { ${ORDER_FIELDS} } }`);
    expect(cancelled.cancelOrder.status).toBe('CANCELLED');
    expect(cancelled.cancelOrder.payments[0]).toMatchObject({ outcome: 'REFUND_REQUESTED', amountCents: 3_000 });
    await refunds.waitFor(1);
    expect(refunds.received[0]?.json).toMatchObject({
      event: 'RefundRequested',
      payment_id: 'paid-then-cancelled',
      order_id: id,
      amount_cents: 3_000,
      currency: 'EUR',
    });
    await eventually(
      () => reservedOf(thing),
      (r) => r === 0,
    );
  });

  it('with PAYMENT_HOLD_SECONDS=0 keeps the flow without payment: no hold, and a confirmed order is fulfilled directly', async () => {
    const orders = await startOrders({ PAYMENT_HOLD_SECONDS: '0' });
    const thing = await product(100, 2);
    const id = await place(orders, [{ productId: thing, quantity: 1 }]);
    const confirmed = await until(orders, id, 'CONFIRMED');
    expect(confirmed).toMatchObject({ paymentDueAt: null, totalCents: 100 });
    const shipped = await orders.data<{ fulfillOrder: { status: string } }>(`mutation { fulfillOrder(id: "${id}") { status } }`);
    expect(shipped.fulfillOrder.status).toBe('FULFILLED');
  });

  it('ends a payment racing its hold in exactly one outcome, with two instances sweeping: paid, or cancelled with the money asked back', async () => {
    const [a, b] = [await startOrders({ PAYMENT_HOLD_SECONDS: '600' }), await startOrders({ PAYMENT_HOLD_SECONDS: '600' })];
    const refunds = await amqp.listen(EXCHANGES.orders, ROUTING_KEYS.refundRequested);
    const paidEvents = await amqp.listen(EXCHANGES.orders, ROUTING_KEYS.orderPaid);
    const count = 200;
    const thing = await product(500, count);
    const ids: string[] = [];
    for (let i = 0; i < count; i += 1) ids.push(await place(i % 2 ? a : b, [{ productId: thing, quantity: 1 }]));
    for (const id of ids) await until(a, id, 'CONFIRMED');

    // Every hold falls due in the same moment, and the payments arrive spread from 300 ms before
    // it to 300 ms after (half over HTTP, half from the broker): the sweeps of both instances and
    // the payments meet on the rows around the due time.
    const due = Date.now() + 1_000;
    await sql('UPDATE orders SET payment_due_at = $1 WHERE id = ANY($2)', [new Date(due), ids]);
    const pay = (id: string, i: number) =>
      i % 2
        ? recordPayment(i % 4 === 1 ? a : b, { orderId: id, paymentId: `race-${id}`, amountCents: 500, currency: 'EUR' })
        : publishPayment({ event: 'PaymentSucceeded', payment_id: `race-${id}`, order_id: id, amount_cents: 500, currency: 'EUR' });
    // When each payment left here and, over HTTP, when it was answered: what its outcome is judged
    // against below, measured apart from anything the service writes (this host's clock, the
    // database's too, which set the due time).
    const sentAt = new Map<string, number>();
    const answeredAt = new Map<string, number>();
    await Promise.all(
      ids.map(async (id, i) => {
        await new Promise((r) => setTimeout(r, due - 300 + (600 * i) / count - Date.now()));
        sentAt.set(id, Date.now());
        await pay(id, i);
        if (i % 2) answeredAt.set(id, Date.now());
      }),
    );
    const settled = await eventually(
      async () => Promise.all(ids.map((id) => order(a, id))),
      (all) => all.every((o) => o.status !== 'CONFIRMED' && o.payments.length === 1),
      60_000,
    );
    let paid = 0;
    const [late, early] = [ids.filter((id) => (sentAt.get(id) as number) > due), ids.filter((id) => (answeredAt.get(id) ?? due) < due)];
    // Enough payments after the due moment, or the check below checks nothing. (Answers before it
    // are few on a busy machine, and may be none: each one that is must have paid.)
    expect(late.length).toBeGreaterThan(10);
    for (const o of settled) {
      const [payment] = o.payments;
      // A payment sent after the due moment never pays, swept yet or not; one answered before it
      // always does (nothing may cancel the order before its due time).
      if (late.includes(o.id)) expect(o.status, o.id).toBe('CANCELLED');
      if (early.includes(o.id)) expect(o.status, o.id).toBe('PAID');
      if (o.status === 'PAID') {
        paid += 1;
        expect(payment?.outcome).toBe('PAID');
        // And the order's own record agrees (the hold is judged by the clock that writes paidAt).
        expect(Date.parse(o.paidAt as string)).toBeLessThan(Date.parse(o.paymentDueAt as string));
      } else {
        expect(o.status).toBe('CANCELLED');
        expect(o.reason).toMatch(/^Payment not received by /);
        expect(payment?.outcome).toBe('REFUND_REQUESTED');
      }
    }
    // Both outcomes happened, or the test did not race anything.
    expect(paid).toBeGreaterThan(0);
    expect(paid).toBeLessThan(count);
    await paidEvents.waitFor(paid);
    await refunds.waitFor(count - paid);
    await new Promise((r) => setTimeout(r, 500));
    expect(paidEvents.received).toHaveLength(paid);
    expect(refunds.received).toHaveLength(count - paid);
    await eventually(
      () => reservedOf(thing),
      (r) => r === paid,
    );
  });

  it('cancels every due hold once with three instances sweeping, one of them stopped while the others sweep', async () => {
    const env = { PAYMENT_HOLD_SECONDS: '600' };
    const first = await startOrders(env);
    const cancelledEvents = await amqp.listen(EXCHANGES.orders, ROUTING_KEYS.orderCancelled);
    const count = 600;
    const thing = await product(100, count);
    const ids = await Promise.all(Array.from({ length: count }, () => place(first, [{ productId: thing, quantity: 1 }])));
    for (const id of ids) await until(first, id, 'CONFIRMED');
    const db = new pg.Client({ connectionString: ordersDb.url });
    await db.connect();
    try {
      // Half fall due now; the other half while an instance is restarted.
      await db.query(`UPDATE orders SET payment_due_at = now() WHERE id = ANY($1)`, [ids.slice(0, count / 2)]);
      await startOrders(env);
      await startOrders(env);
      // The newest instance stops (its sweep may be mid-batch) while the rest keep sweeping.
      await running.pop()?.close();
      await db.query(`UPDATE orders SET payment_due_at = now() WHERE id = ANY($1)`, [ids.slice(count / 2)]);
      await startOrders(env);
      await eventually(
        async () => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM orders WHERE status = 'CANCELLED'`)).rows[0]?.n,
        (n) => n === count,
        60_000,
      );
    } finally {
      await db.end();
    }
    await cancelledEvents.waitFor(count);
    await new Promise((r) => setTimeout(r, 1_000));
    const ours = new Set(ids);
    const perOrder = new Map<string, number>();
    for (const m of cancelledEvents.received) {
      const id = (m.json as { order_id: string }).order_id;
      if (ours.has(id)) perOrder.set(id, (perOrder.get(id) ?? 0) + 1);
    }
    expect(perOrder.size).toBe(count);
    expect([...perOrder.values()].every((n) => n === 1)).toBe(true);
    await eventually(
      () => reservedOf(thing),
      (r) => r === 0,
      30_000,
    );
  });

  it('stops its expiry sweep between two batches when it shuts down, however many holds are due', async () => {
    await startOrders({ PAYMENT_HOLD_SECONDS: '600', PAYMENT_EXPIRY_INTERVAL_MS: '50' });
    const service = running.pop() as RunningService;
    const due = 40 * HOLD_EXPIRY_BATCH;
    const db = new pg.Client({ connectionString: ordersDb.url });
    await db.connect();
    const count = async (status: string) =>
      (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM orders WHERE status = $1', [status])).rows[0]?.n ?? 0;
    try {
      // A flash sale's worth of holds, all over at once.
      await db.query(
        `INSERT INTO orders (id, customer_id, status, items, priced_items, total_cents, currency, payment_due_at)
         SELECT 'ORD-SWEEP-' || g, 'sweeper', 'CONFIRMED', '[{"product_id":1,"quantity":1}]',
                '[{"product_id":1,"quantity":1,"unit_price_cents":100}]', 100, 'EUR', now() - interval '1 minute'
         FROM generate_series(1, $1::int) AS g`,
        [due],
      );
      // The sweep is under way: its first batch has committed.
      await eventually(
        () => count('CANCELLED'),
        (n) => n > 0,
        30_000,
        10,
      );
      await service.close();
      const [cancelled, left] = [await count('CANCELLED'), await count('CONFIRMED')];
      expect(cancelled + left).toBe(due);
      // The batch under way was finished (each one whole: 500 at a time), and no other begun.
      expect(cancelled % HOLD_EXPIRY_BATCH).toBe(0);
      expect(left).toBeGreaterThanOrEqual(due - 4 * HOLD_EXPIRY_BATCH);
    } finally {
      await db.end();
    }
  });
});
