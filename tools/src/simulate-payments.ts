/**
 * `npm run simulate -- payments`: plays another team's payment service on the wire. It watches
 * `order.confirmed` on the `orders` exchange, asks the Order API what each order owes, and
 * publishes PaymentSucceeded / PaymentFailed on `payments` (with confirms, mandatory), giving each
 * confirmed order one role: paid once, a failed attempt (then paid, or not), the same payment
 * twice, a second charge, paid after its hold is over, or never paid. It reads `order.paid` and
 * `order.refund_requested` to report what the Order Service kept and what it asked to give back,
 * and checks both against what each role should get.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { Connection, type AsyncMessage, type ReturnedMessage } from 'rabbitmq-client';
import {
  EXCHANGES,
  exchanges,
  JSON_CONTENT_TYPE,
  OrderConfirmed,
  OrderPaid,
  PaymentFailed,
  PaymentSucceeded,
  QUEUES,
  RefundRequested,
  routeOf,
  ROUTING_KEYS,
  type PaymentEvent,
} from '@stockflow/contracts';
import { connectionTarget, graphqlClient } from '@stockflow/platform';

export const ROLES = ['pay', 'fail', 'duplicate', 'double', 'late', 'unpaid'] as const;
/** What the simulator does to one confirmed order. */
export type Role = (typeof ROLES)[number];

export interface PaymentSimulationOptions {
  amqpUrl: string;
  ordersUrl: string;
  /** An admin token, when the Order API requires one (it reads totals of every customer's orders). */
  token?: string | undefined;
  /**
   * Shares of the confirmed orders by role (together at most 1; the rest are left unpaid): pay
   * once; fail an attempt (every other one is then paid with a new attempt); send one payment
   * twice (the same payment id); charge twice (two payment ids); pay after the hold is over.
   */
  shares: Record<Exclude<Role, 'unpaid'>, number>;
  /** About how long after the confirmation a payment is sent (each one 0.5x to 1.5x of it). */
  delayMs: number;
  /** How long to take new confirmed orders. */
  durationMs: number;
  /** Stop taking new orders after this many. */
  maxOrders?: number | undefined;
  /** After that, how long at most to finish the payments (late ones wait for their hold) and collect the answers. */
  lingerMs: number;
  /** Payment ids start with it (default SIMPAY-<time>). */
  prefix?: string | undefined;
  /** Ends the watch early (Ctrl-C). */
  signal?: AbortSignal | undefined;
  /** Called once its queue is bound: confirmations from then on are seen. */
  onReady?: () => void;
  log?: (line: string) => void;
}

export interface SimulatedPayment {
  paymentId: string;
  event: PaymentEvent['event'];
  amountCents: number | null;
  /** Sent this many times (a duplicate twice). */
  copies: number;
  /** The Order Service should ask its money back. */
  refundExpected: boolean;
}

export interface SimulatedOrder {
  orderId: string;
  role: Role;
  totalCents: number | null;
  currency: string | null;
  paymentDueAt: string | null;
  payments: SimulatedPayment[];
  /** Why nothing was sent for it, when nothing was. */
  skipped?: string;
  /** OrderPaid seen for it. */
  paid: boolean;
  /** RefundRequested seen for its payments. */
  refunds: RefundRequested[];
}

export interface PaymentSimulationReport {
  orders: SimulatedOrder[];
  /** Orders by role (skipped ones included). */
  roles: Record<Role, number>;
  sent: { succeeded: number; failed: number };
  /** OrderPaid seen for the orders it paid. */
  paid: number;
  /** Every RefundRequested seen during the run, the simulator's payments or anyone's. */
  refunds: RefundRequested[];
  /** What it was asked to give back, by currency, for its own payments. */
  refundedCents: Record<string, number>;
  /** What did not go as each role should: an OrderPaid or a refund missing, or one that should not have come. */
  problems: string[];
  ok: boolean;
}

interface OrderView {
  id: string;
  status: string;
  totalCents: number | null;
  currency: string | null;
  paymentDueAt: string | null;
}

const LOOKUP = 'query($ids: [ID!]) { orders(ids: $ids, first: 500) { nodes { id status totalCents currency paymentDueAt } } }';
/** How long after paymentDueAt a late payment is sent: past the hold by the database's clock too. */
const LATE_BY_MS = 1_000;

const decode = (msg: AsyncMessage): unknown => {
  try {
    return JSON.parse(Buffer.isBuffer(msg.body) ? msg.body.toString() : typeof msg.body === 'string' ? msg.body : JSON.stringify(msg.body));
  } catch {
    return undefined;
  }
};

/**
 * Roles in proportion to the shares from the first order on: each order takes the role furthest
 * behind its share, so a run of 20 orders has exactly the mix asked for, not a random one.
 */
export function roleAssigner(shares: PaymentSimulationOptions['shares']): () => Role {
  const weights: [Role, number][] = [
    ...Object.entries(shares),
    ['unpaid', Math.max(0, 1 - Object.values(shares).reduce((a, b) => a + b, 0))],
  ] as [Role, number][];
  const taken = new Map<Role, number>(ROLES.map((r) => [r, 0]));
  let n = 0;
  return () => {
    n += 1;
    let best: Role = 'unpaid';
    let deficit = -Infinity;
    for (const [role, share] of weights) {
      const behind = share * n - (taken.get(role) ?? 0);
      if (share > 0 && behind > deficit + 1e-9) [best, deficit] = [role, behind];
    }
    taken.set(best, (taken.get(best) ?? 0) + 1);
    return best;
  };
}

export async function simulatePayments(options: PaymentSimulationOptions): Promise<PaymentSimulationReport> {
  const log = options.log ?? (() => undefined);
  const prefix = options.prefix ?? `SIMPAY-${Date.now().toString(36)}`;
  const orders = graphqlClient(options.ordersUrl, { token: options.token });
  const nextRole = roleAssigner(options.shares);
  const start = Date.now();
  const deadline = start + options.durationMs + options.lingerMs;
  const simulated = new Map<string, SimulatedOrder>();
  const byPayment = new Map<string, SimulatedOrder>();
  const refunds: RefundRequested[] = [];
  const problems: string[] = [];
  const sent = { succeeded: 0, failed: 0 };
  const unroutable = new Set<string>();
  const work = new Set<Promise<void>>();
  let watching = true;
  let changed: () => void = () => undefined;
  const wake = () => changed();

  const connection = new Connection({ ...connectionTarget(options.amqpUrl), retryLow: 200, retryHigh: 1_000 });
  await connection.onConnect(5_000);
  const publisher = connection.createPublisher({
    confirm: true,
    exchanges: exchanges.map((e) => ({ exchange: e.exchange, type: e.type, durable: e.durable })),
  });
  // Mandatory: a payment no queue takes (no Order Service has declared payment.orders) is
  // reported rather than lost without a word.
  publisher.on('basic.return', (msg: ReturnedMessage) => {
    if (msg.messageId) unroutable.add(msg.messageId);
  });

  const publish = async (payment: PaymentEvent) => {
    const { exchange, routingKey } = routeOf(payment.event);
    const body = payment.event === 'PaymentSucceeded' ? PaymentSucceeded.parse(payment) : PaymentFailed.parse(payment);
    await publisher.send(
      {
        exchange,
        routingKey,
        contentType: JSON_CONTENT_TYPE,
        durable: true,
        mandatory: true,
        messageId: payment.event_id,
      },
      JSON.stringify(body),
    );
    sent[payment.event === 'PaymentSucceeded' ? 'succeeded' : 'failed'] += 1;
    log(`${routingKey.padEnd(22)} ${JSON.stringify(body)}`);
  };

  const meta = () => ({ event_id: randomUUID(), occurred_at: new Date().toISOString() });
  const succeeded = (order: SimulatedOrder, paymentId: string): PaymentEvent => ({
    event: 'PaymentSucceeded',
    payment_id: paymentId,
    order_id: order.orderId,
    amount_cents: order.totalCents as number,
    currency: order.currency as string,
    ...meta(),
  });
  const track = (order: SimulatedOrder, payment: SimulatedPayment) => {
    order.payments.push(payment);
    byPayment.set(payment.paymentId, order);
  };
  const timers = new Set<NodeJS.Timeout>();
  const at = (time: number, action: () => Promise<void>) => {
    const p = new Promise<void>((resolve) => {
      const timer = setTimeout(
        () => {
          timers.delete(timer);
          resolve();
        },
        Math.max(0, time - Date.now()),
      );
      timers.add(timer);
    })
      .then(action)
      .catch((error: unknown) => {
        problems.push(`a payment could not be published: ${(error as Error).message}`);
      })
      .finally(() => {
        work.delete(p);
        wake();
      });
    work.add(p);
  };
  const jitter = () => Math.round(options.delayMs * (0.5 + randomInt(1_001) / 1_000));

  /** Schedules what the order's role sends; the ids are fixed now, so the answers can be matched as they come. */
  const plan = (order: SimulatedOrder, seen: number) => {
    const id = (n: number) => `${prefix}-${order.orderId}-${n}`;
    const payAt = seen + jitter();
    switch (order.role) {
      case 'pay': {
        track(order, { paymentId: id(1), event: 'PaymentSucceeded', amountCents: order.totalCents, copies: 1, refundExpected: false });
        at(payAt, () => publish(succeeded(order, id(1))));
        break;
      }
      case 'fail': {
        // Every other failed attempt is followed by a new attempt that succeeds, the rest give up (and expire).
        const retry = [...simulated.values()].filter((o) => o.role === 'fail').length % 2 === 1;
        track(order, { paymentId: id(1), event: 'PaymentFailed', amountCents: null, copies: 1, refundExpected: false });
        at(payAt, () =>
          publish({ event: 'PaymentFailed', payment_id: id(1), order_id: order.orderId, reason: 'card declined (simulated)', ...meta() }),
        );
        if (retry) {
          track(order, { paymentId: id(2), event: 'PaymentSucceeded', amountCents: order.totalCents, copies: 1, refundExpected: false });
          at(payAt + jitter(), () => publish(succeeded(order, id(2))));
        }
        break;
      }
      case 'duplicate': {
        // The same message twice at once, as a provider retrying a publish it did not see confirmed.
        track(order, { paymentId: id(1), event: 'PaymentSucceeded', amountCents: order.totalCents, copies: 2, refundExpected: false });
        at(payAt, async () => {
          const payment = succeeded(order, id(1));
          await Promise.all([publish(payment), publish({ ...payment, event_id: randomUUID() })]);
        });
        break;
      }
      case 'double': {
        track(order, { paymentId: id(1), event: 'PaymentSucceeded', amountCents: order.totalCents, copies: 1, refundExpected: false });
        track(order, { paymentId: id(2), event: 'PaymentSucceeded', amountCents: order.totalCents, copies: 1, refundExpected: true });
        at(payAt, () => publish(succeeded(order, id(1))));
        at(payAt + 100, () => publish(succeeded(order, id(2))));
        break;
      }
      case 'late': {
        const lateAt = Date.parse(order.paymentDueAt as string) + LATE_BY_MS;
        track(order, { paymentId: id(1), event: 'PaymentSucceeded', amountCents: order.totalCents, copies: 1, refundExpected: true });
        at(lateAt, () => publish(succeeded(order, id(1))));
        break;
      }
      case 'unpaid':
        break;
    }
  };

  // Orders confirmed and not looked up yet, with when the confirmation arrived.
  const toLookUp = new Map<string, number>();
  let lookups = Promise.resolve();
  const lookUp = async () => {
    const batch = [...toLookUp].slice(0, 500);
    if (batch.length === 0) return;
    for (const [id] of batch) toLookUp.delete(id);
    let found: OrderView[];
    try {
      found = (await orders.data<{ orders: { nodes: OrderView[] } }>(LOOKUP, { ids: batch.map(([id]) => id) })).orders.nodes;
    } catch (error) {
      problems.push(`the Order API did not answer about ${batch.length} confirmed orders: ${(error as Error).message}`);
      return;
    }
    const byId = new Map(found.map((o) => [o.id, o]));
    for (const [id, seen] of batch) {
      const view = byId.get(id);
      const order: SimulatedOrder = {
        orderId: id,
        role: nextRole(),
        totalCents: view?.totalCents ?? null,
        currency: view?.currency ?? null,
        paymentDueAt: view?.paymentDueAt ?? null,
        payments: [],
        paid: false,
        refunds: [],
      };
      if (!view) order.skipped = 'the Order API does not know it';
      else if (view.status !== 'CONFIRMED') order.skipped = `no longer awaiting payment (${view.status})`;
      else if (view.totalCents === null || view.currency === null) order.skipped = 'it has no total (a product without a price)';
      else if (order.role === 'late' && view.paymentDueAt === null) order.skipped = 'it has no payment hold (payments are off)';
      else if (order.role === 'late' && Date.parse(view.paymentDueAt as string) + LATE_BY_MS > deadline) {
        order.skipped = 'its hold ends after the run (a shorter PAYMENT_HOLD_SECONDS, or a longer --linger)';
      }
      simulated.set(id, order);
      if (order.skipped) log(`skipped ${id} (${order.role}): ${order.skipped}`);
      else plan(order, seen);
    }
    wake();
  };

  const taking = () => watching && (options.maxOrders === undefined || simulated.size + toLookUp.size < options.maxOrders);
  const listener = connection.createConsumer(
    {
      queue: '',
      queueOptions: { exclusive: true, autoDelete: true },
      exchanges: exchanges.map((e) => ({ exchange: e.exchange, type: e.type, durable: e.durable })),
      queueBindings: [ROUTING_KEYS.orderConfirmed, ROUTING_KEYS.orderPaid].map((routingKey) => ({
        exchange: EXCHANGES.orders,
        routingKey,
      })),
    },
    (msg) => {
      const body = decode(msg);
      if (msg.routingKey === ROUTING_KEYS.orderConfirmed) {
        const confirmed = OrderConfirmed.safeParse(body);
        if (!confirmed.success || !taking() || simulated.has(confirmed.data.order_id)) return;
        toLookUp.set(confirmed.data.order_id, Date.now());
        // Lookups one after another, each taking every confirmation that arrived meanwhile.
        lookups = lookups.then(lookUp);
      } else if (msg.routingKey === ROUTING_KEYS.orderPaid) {
        const paid = OrderPaid.safeParse(body);
        const order = paid.success ? simulated.get(paid.data.order_id) : undefined;
        if (!order || order.paid) return;
        order.paid = true;
        log(`${msg.routingKey.padEnd(22)} ${JSON.stringify(body)}`);
      }
      wake();
    },
  );
  // Refunds are taken from the queue Stockflow declares for the payment service (a passive
  // declare: it checks the queue is there and leaves its arguments alone), as a real one would.
  const refundTaker = connection.createConsumer({ queue: QUEUES.refundRequestsPayments, queueOptions: { passive: true } }, (msg) => {
    const body = decode(msg);
    const refund = RefundRequested.safeParse(body);
    if (!refund.success) return;
    refunds.push(refund.data);
    byPayment.get(refund.data.payment_id)?.refunds.push(refund.data);
    log(`${msg.routingKey.padEnd(22)} ${JSON.stringify(body)}`);
    wake();
  });
  await Promise.all([listener, refundTaker].map((c) => new Promise<void>((resolve) => c.once('ready', () => resolve()))));
  log(`watching ${EXCHANGES.orders}/${ROUTING_KEYS.orderConfirmed}; paying on ${EXCHANGES.payments}...`);
  options.onReady?.();

  const expectPaid = (o: SimulatedOrder) => !o.skipped && o.payments.some((p) => p.event === 'PaymentSucceeded' && !p.refundExpected);
  const expectedRefunds = (o: SimulatedOrder) => (o.skipped ? [] : o.payments.filter((p) => p.refundExpected));
  const settled = () =>
    [...simulated.values()].every(
      (o) => o.paid === expectPaid(o) && expectedRefunds(o).every((p) => o.refunds.some((r) => r.payment_id === p.paymentId)),
    );

  const waitUntil = async (done: () => boolean, until: number) => {
    while (!done() && Date.now() < until) {
      await new Promise<void>((resolve) => {
        changed = resolve;
        setTimeout(resolve, Math.min(250, Math.max(0, until - Date.now())));
      });
    }
  };
  try {
    const watchEnd = start + options.durationMs;
    await waitUntil(() => !taking() || options.signal?.aborted === true, watchEnd);
    watching = false;
    await lookups;
    await waitUntil(() => work.size === 0 && settled(), options.signal?.aborted ? Date.now() : deadline);
  } finally {
    watching = false;
    if (timers.size > 0) problems.push(`${timers.size} payments were not sent: the run ended first`);
    for (const timer of timers) clearTimeout(timer);
    await listener.close();
    await refundTaker.close();
    await publisher.close();
    await connection.close();
  }

  // What each role should have got, against what came back.
  for (const o of simulated.values()) {
    if (o.skipped) continue;
    const refunded = new Set(o.refunds.map((r) => r.payment_id));
    if (expectPaid(o) && !o.paid) problems.push(`${o.orderId} (${o.role}): no OrderPaid`);
    if (!expectPaid(o) && o.paid) problems.push(`${o.orderId} (${o.role}): paid, though it should not have been`);
    for (const p of o.payments) {
      if (p.refundExpected && !refunded.has(p.paymentId)) problems.push(`${o.orderId} (${o.role}): no RefundRequested for ${p.paymentId}`);
      if (!p.refundExpected && refunded.has(p.paymentId)) {
        problems.push(
          `${o.orderId} (${o.role}): ${p.paymentId} was refused (${o.refunds.find((r) => r.payment_id === p.paymentId)?.reason})`,
        );
      }
    }
  }
  if (unroutable.size > 0) {
    problems.push(
      `${unroutable.size} payments reached no queue on ${EXCHANGES.payments}: is the Order Service running (it declares payment.orders)?`,
    );
  }
  const roles = Object.fromEntries(ROLES.map((r) => [r, 0])) as Record<Role, number>;
  for (const o of simulated.values()) roles[o.role] += 1;
  const refundedCents: Record<string, number> = {};
  for (const r of refunds) if (byPayment.has(r.payment_id)) refundedCents[r.currency] = (refundedCents[r.currency] ?? 0) + r.amount_cents;
  const list = [...simulated.values()];
  return {
    orders: list,
    roles,
    sent,
    paid: list.filter((o) => o.paid).length,
    refunds,
    refundedCents,
    problems,
    ok: problems.length === 0,
  };
}
