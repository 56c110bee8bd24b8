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
import { Connection } from 'rabbitmq-client';
import { EXCHANGES, OrderCancelled, OrderConfirmed, OrderPaid, RefundRequested, ROUTING_KEYS } from '@stockflow/contracts';
import { graphqlClient } from '@stockflow/client';
import { connectionTarget } from '@stockflow/messaging';
import { messageJson, ownQueue, requireLocal } from '../simulator.ts';
import { cancelHolding } from './cancel-holding.ts';
import { LATE_BY_MS, paymentPlanner } from './plan.ts';
import { paymentPublisher } from './publisher.ts';
import { expectedRefunds, expectPaid, judge, type PaymentSimulationReport, type SimulatedOrder } from './report.ts';
import { roleAssigner, type Shares } from './roles.ts';
import { schedule } from './schedule.ts';

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
  shares: Shares;
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

interface OrderView {
  id: string;
  status: string;
  totalCents: number | null;
  currency: string | null;
  paymentDueAt: string | null;
}

const LOOKUP = 'query($ids: [ID!]) { orders(ids: $ids, first: 500) { nodes { id status totalCents currency paymentDueAt } } }';
const PLACE = 'mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }';

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
  // Events for orders it has not been given the id of yet: while it places them, an event may come
  // before the answer. Kept only while placing; they are matched to its orders as the ids come.
  const early = new Map<string, { routingKey: string; body: unknown; at: number }[]>();
  let placing = true;
  const refunds: RefundRequested[] = [];
  const problems: string[] = [];
  let changed: () => void = () => undefined;
  const wake = () => changed();

  const connection = new Connection({ ...connectionTarget(options.amqpUrl), retryLow: 200, retryHigh: 1_000 });
  await connection.onConnect(5_000);
  const publisher = paymentPublisher(connection, log);
  const scheduled = schedule((error: unknown) => {
    problems.push(`a payment could not be published: ${(error as Error).message}`);
  }, wake);
  const { plan, orderOf } = paymentPlanner({ prefix, delayMs: options.delayMs, publish: publisher.publish, at: scheduled.at });

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
      if (!refund.success || orderOf(refund.data.payment_id) !== order) return;
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
    await waitUntil(() => scheduled.idle() && settled());
    await lookups;
  } finally {
    placing = false;
    const unsent = scheduled.stop();
    if (unsent > 0) problems.push(`${unsent} payments were not sent: the run ended first`);
    await listener.close();
    await publisher.close();
    await connection.close();
    if (!options.keep) cancelledAtEnd = await cancelHolding(api, customerId, problems, log);
    api.close();
  }

  return judge({ customerId, simulated, sent: publisher.sent, unroutable: publisher.unroutable, refunds, cancelledAtEnd, problems });
}
