/**
 * `npm run simulate -- payments`: plays another team's payment service on the wire, for orders of
 * its own. It places its orders through the Order API (for a customer of its own, so it knows
 * each order id from the answer), watches `order.confirmed` for them, asks the Order API what
 * each one owes, and publishes PaymentSucceeded / PaymentFailed on `payments` (with confirms,
 * mandatory), giving each order one role: paid once, a failed attempt (then paid, or not), the
 * same payment twice, a second charge, paid after its hold is over, or never paid. Any other
 * order it sees is not its business: it never pays one.
 *
 * It watches through a queue of its own, so it takes nothing meant for a real payment service:
 * the refunds Stockflow asks stay in `order.refund_requested.payments`, and it reads copies of
 * those for its payments to check them against what each role should get. At the end it cancels
 * those of its orders that still hold stock (unless told to keep them), so the demo's stock is as
 * it found it.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { Connection, type ReturnedMessage } from 'rabbitmq-client';
import {
  EXCHANGES,
  exchanges,
  JSON_CONTENT_TYPE,
  OrderCancelled,
  OrderConfirmed,
  OrderPaid,
  PaymentFailed,
  PaymentSucceeded,
  RefundRequested,
  routeOf,
  ROUTING_KEYS,
  type PaymentEvent,
} from '@stockflow/contracts';
import { connectionTarget } from '@stockflow/messaging';
import { graphqlClient } from '@stockflow/client';
import { messageJson, ownQueue, requireLocal } from './simulator.ts';

export const ROLES = ['pay', 'fail', 'duplicate', 'double', 'late', 'unpaid'] as const;
/** What the simulator does to one confirmed order. */
export type Role = (typeof ROLES)[number];

export interface PaymentSimulationOptions {
  amqpUrl: string;
  ordersUrl: string;
  /** An admin token, when the Order API requires one (it places orders for its customer, reads and cancels them). */
  token?: string | undefined;
  /** Products its orders are for: one unit of one product each, taking them in turn. */
  products: number[];
  /** How many orders it places. */
  orders: number;
  /**
   * Shares of its orders by role (together at most 1; the rest are left unpaid): pay once; fail
   * an attempt (every other one is then paid with a new attempt); send one payment twice (the
   * same payment id); charge twice (two payment ids); pay after the hold is over.
   */
  shares: Record<Exclude<Role, 'unpaid'>, number>;
  /** About how long after the confirmation a payment is sent (each one 0.5x to 1.5x of it). */
  delayMs: number;
  /** How long the whole run may take: placing, paying (late ones wait for their hold), collecting the answers. */
  timeoutMs: number;
  /** Leave its orders as they ended; otherwise those still holding stock (unpaid, or paid) are cancelled at the end. */
  keep?: boolean | undefined;
  /** Run against a broker or an Order API not on this machine (see requireLocal). */
  allowRemote?: boolean | undefined;
  /** Payment ids start with it, and it is the customer its orders are placed for (default SIMPAY-<time>). */
  prefix?: string | undefined;
  /** Ends the run early (Ctrl-C); the cancellations at the end still happen. */
  signal?: AbortSignal | undefined;
  /** Called once its queue is bound, before it places its first order. */
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
  /** OrderConfirmed seen for it. */
  confirmed: boolean;
  totalCents: number | null;
  currency: string | null;
  paymentDueAt: string | null;
  payments: SimulatedPayment[];
  /** Why nothing was sent for it, when nothing was (not confirmed, say). */
  skipped?: string;
  /** OrderPaid seen for it. */
  paid: boolean;
  /** RefundRequested seen for its payments. */
  refunds: RefundRequested[];
}

export interface PaymentSimulationReport {
  /** The customer its orders were placed for. */
  customerId: string;
  orders: SimulatedOrder[];
  /** Orders by role (skipped ones included). */
  roles: Record<Role, number>;
  sent: { succeeded: number; failed: number };
  /** OrderPaid seen for its orders. */
  paid: number;
  /** The RefundRequested seen for its payments (copies: the originals stay for the payment service). */
  refunds: RefundRequested[];
  /** What it was asked to give back, by currency. */
  refundedCents: Record<string, number>;
  /** Its orders cancelled at the end because they still held stock (none when kept). */
  cancelledAtEnd: string[];
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
const PLACE = 'mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }';
const CANCEL = 'mutation($id: ID!, $reason: String) { cancelOrder(id: $id, reason: $reason) { id } }';
/** Its orders in these statuses still hold stock (or may yet), and are cancelled at the end. */
const HOLDING_STOCK = ['PENDING', 'CONFIRMED', 'PAID'] as const;
const HOLDING =
  'query($customerId: ID!, $status: OrderStatus, $first: Int) { orders(customerId: $customerId, status: $status, first: $first) { nodes { id } } }';
const CANCEL_PAGE = 100;
/** How long after paymentDueAt a late payment is sent: past the hold by the database's clock too. */
const LATE_BY_MS = 1_000;

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
  requireLocal({ amqpUrl: options.amqpUrl, ordersUrl: options.ordersUrl }, options.allowRemote);
  const log = options.log ?? (() => undefined);
  const prefix = options.prefix ?? `SIMPAY-${Date.now().toString(36)}`;
  const customerId = prefix;
  const api = graphqlClient(options.ordersUrl, { token: options.token });
  const nextRole = roleAssigner(options.shares);
  const deadline = Date.now() + options.timeoutMs;
  // Its own orders, by id, from the moment the Order API answered with the id.
  const simulated = new Map<string, SimulatedOrder>();
  const byPayment = new Map<string, SimulatedOrder>();
  // Events for orders it has not been given the id of yet: while it places them, an event may come
  // before the answer. Kept only while placing; they are matched to its orders as the ids come.
  const early = new Map<string, { routingKey: string; body: unknown; at: number }[]>();
  let placing = true;
  const refunds: RefundRequested[] = [];
  const problems: string[] = [];
  const sent = { succeeded: 0, failed: 0 };
  const unroutable = new Set<string>();
  const work = new Set<Promise<void>>();
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
  let failed = 0;
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
        failed += 1;
        const retry = failed % 2 === 1;
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

  // Its orders confirmed and not looked up yet, with when the confirmation arrived; and those
  // looked up, whose payments are planned (or that were skipped).
  const toLookUp = new Map<string, number>();
  const planned = new Set<string>();
  let lookups = Promise.resolve();
  const lookUp = async () => {
    const batch = [...toLookUp].slice(0, 500);
    if (batch.length === 0) return;
    for (const [id] of batch) toLookUp.delete(id);
    let found: OrderView[];
    try {
      found = (await api.data<{ orders: { nodes: OrderView[] } }>(LOOKUP, { ids: batch.map(([id]) => id) })).orders.nodes;
    } catch (error) {
      problems.push(`the Order API did not answer about ${batch.length} confirmed orders: ${(error as Error).message}`);
      for (const [id] of batch) (simulated.get(id) as SimulatedOrder).skipped = 'the Order API did not answer about it';
      return;
    }
    const byId = new Map(found.map((o) => [o.id, o]));
    for (const [id, seen] of batch) {
      const order = simulated.get(id) as SimulatedOrder;
      const view = byId.get(id);
      order.totalCents = view?.totalCents ?? null;
      order.currency = view?.currency ?? null;
      order.paymentDueAt = view?.paymentDueAt ?? null;
      if (!view) order.skipped = 'the Order API does not know it';
      else if (view.status !== 'CONFIRMED') order.skipped = `no longer awaiting payment (${view.status})`;
      else if (view.totalCents === null || view.currency === null) order.skipped = 'it has no total (a product without a price)';
      else if (order.role === 'late' && view.paymentDueAt === null) order.skipped = 'it has no payment hold (payments are off)';
      else if (order.role === 'late' && Date.parse(view.paymentDueAt as string) + LATE_BY_MS > deadline) {
        order.skipped = 'its hold ends after the run (a shorter PAYMENT_HOLD_SECONDS, or a longer --timeout)';
      }
      if (order.skipped) log(`skipped ${id} (${order.role}): ${order.skipped}`);
      else plan(order, seen);
      planned.add(id);
    }
    wake();
  };

  /** What an event says about one of its orders. */
  const take = (order: SimulatedOrder, routingKey: string, body: unknown, at: number) => {
    if (routingKey === ROUTING_KEYS.orderConfirmed) {
      if (!OrderConfirmed.safeParse(body).success || order.confirmed) return;
      order.confirmed = true;
      toLookUp.set(order.orderId, at);
      // Lookups one after another, each taking every confirmation that arrived meanwhile.
      lookups = lookups.then(lookUp);
    } else if (routingKey === ROUTING_KEYS.orderCancelled) {
      const cancelled = OrderCancelled.safeParse(body);
      // After its confirmation, a cancellation is the order's role playing out (it expired); before, it was never confirmed.
      if (!cancelled.success || order.confirmed || order.skipped) return;
      order.skipped = `never confirmed: ${cancelled.data.reason ?? 'cancelled'}`;
      log(`skipped ${order.orderId} (${order.role}): ${order.skipped}`);
    } else if (routingKey === ROUTING_KEYS.orderPaid) {
      if (!OrderPaid.safeParse(body).success || order.paid) return;
      order.paid = true;
      log(`${routingKey.padEnd(22)} ${JSON.stringify(body)}`);
    } else if (routingKey === ROUTING_KEYS.refundRequested) {
      const refund = RefundRequested.safeParse(body);
      if (!refund.success || byPayment.get(refund.data.payment_id) !== order) return;
      refunds.push(refund.data);
      order.refunds.push(refund.data);
      log(`${routingKey.padEnd(22)} ${JSON.stringify(body)}`);
    }
    wake();
  };

  const watched = [ROUTING_KEYS.orderConfirmed, ROUTING_KEYS.orderCancelled, ROUTING_KEYS.orderPaid, ROUTING_KEYS.refundRequested];
  const listener = connection.createConsumer(
    ownQueue(
      'simulate-payments',
      watched.map((routingKey) => ({ exchange: EXCHANGES.orders, routingKey })),
    ),
    (msg) => {
      const body = messageJson(msg);
      const orderId = (body as { order_id?: unknown } | undefined)?.order_id;
      if (typeof orderId !== 'string') return;
      const order = simulated.get(orderId);
      if (order) take(order, msg.routingKey, body, Date.now());
      else if (placing) early.set(orderId, [...(early.get(orderId) ?? []), { routingKey: msg.routingKey, body, at: Date.now() }]);
    },
  );
  // As in simulate-orders: a failed ack is redelivered, not lost, so it is only worth a line.
  listener.on('error', (err: Error) => log(`event listener: ${err.message}`));
  await new Promise<void>((resolve) => listener.once('ready', () => resolve()));
  log(`watching ${EXCHANGES.orders} for its orders (customer ${customerId}); paying on ${EXCHANGES.payments}...`);
  options.onReady?.();

  const expectPaid = (o: SimulatedOrder) => !o.skipped && o.payments.some((p) => p.event === 'PaymentSucceeded' && !p.refundExpected);
  const expectedRefunds = (o: SimulatedOrder) => (o.skipped ? [] : o.payments.filter((p) => p.refundExpected));
  const settled = () =>
    [...simulated.values()].every(
      (o) =>
        o.skipped !== undefined ||
        (planned.has(o.orderId) &&
          o.paid === expectPaid(o) &&
          expectedRefunds(o).every((p) => o.refunds.some((r) => r.payment_id === p.paymentId))),
    );
  const waitUntil = async (done: () => boolean) => {
    while (!done() && Date.now() < deadline && !options.signal?.aborted) {
      await new Promise<void>((resolve) => {
        changed = resolve;
        setTimeout(resolve, Math.min(250, Math.max(0, deadline - Date.now())));
      });
    }
  };

  let cancelledAtEnd: string[] = [];
  try {
    for (let i = 0; i < options.orders && Date.now() < deadline && !options.signal?.aborted; i += 1) {
      const productId = String(options.products[i % options.products.length]);
      let id: string;
      try {
        id = (await api.data<{ createOrder: { id: string } }>(PLACE, { input: { customerId, items: [{ productId, quantity: 1 }] } }))
          .createOrder.id;
      } catch (error) {
        problems.push(`the Order API did not take order ${i + 1}: ${(error as Error).message}`);
        break;
      }
      const order: SimulatedOrder = {
        orderId: id,
        role: nextRole(),
        confirmed: false,
        totalCents: null,
        currency: null,
        paymentDueAt: null,
        payments: [],
        paid: false,
        refunds: [],
      };
      simulated.set(id, order);
      log(`placed  ${id} (${order.role}): 1 x product ${productId}`);
      for (const e of early.get(id) ?? []) take(order, e.routingKey, e.body, e.at);
      early.delete(id);
    }
    placing = false;
    early.clear();
    await waitUntil(() => work.size === 0 && settled());
    await lookups;
  } finally {
    placing = false;
    if (timers.size > 0) problems.push(`${timers.size} payments were not sent: the run ended first`);
    for (const timer of timers) clearTimeout(timer);
    await listener.close();
    await publisher.close();
    await connection.close();
    if (!options.keep) cancelledAtEnd = await cancelHolding();
    api.close();
  }

  /**
   * Cancels its orders that still hold stock, as their customer would (a paid one's payment is
   * asked back). Found by its customer, not by the ids it knows: an order whose createOrder answer
   * was lost is its own too. An order moving on meanwhile (PENDING to CONFIRMED, CONFIRMED to PAID)
   * is met in the next status's pass.
   */
  async function cancelHolding(): Promise<string[]> {
    const cancelled = new Set<string>();
    try {
      for (const status of HOLDING_STOCK) {
        for (;;) {
          const { nodes } = (await api.data<{ orders: { nodes: { id: string }[] } }>(HOLDING, { customerId, status, first: CANCEL_PAGE }))
            .orders;
          const fresh = nodes.filter((o) => !cancelled.has(o.id));
          for (const o of fresh) {
            await api.data(CANCEL, { id: o.id, reason: 'payment simulation over (npm run simulate -- payments)' });
            cancelled.add(o.id);
          }
          if (fresh.length === 0 || nodes.length < CANCEL_PAGE) break;
        }
      }
    } catch (error) {
      problems.push(`could not cancel its orders still holding stock (${cancelled.size} cancelled): ${(error as Error).message}`);
    }
    if (cancelled.size > 0) log(`cancelled ${cancelled.size} of its orders still holding stock`);
    return [...cancelled];
  }

  // What each role should have got, against what came back.
  const unanswered = [...simulated.values()].filter((o) => !o.confirmed && !o.skipped);
  for (const o of unanswered) o.skipped = 'neither confirmed nor cancelled within the run';
  if (unanswered.length > 0) {
    problems.push(
      `${unanswered.length} of its orders were neither confirmed nor cancelled within the run: is the Inventory Service running?`,
    );
  }
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
  for (const r of refunds) refundedCents[r.currency] = (refundedCents[r.currency] ?? 0) + r.amount_cents;
  const list = [...simulated.values()];
  return {
    customerId,
    orders: list,
    roles,
    sent,
    paid: list.filter((o) => o.paid).length,
    refunds,
    refundedCents,
    cancelledAtEnd,
    problems,
    ok: problems.length === 0,
  };
}
