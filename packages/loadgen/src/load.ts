/**
 * Drives a running platform through its GraphQL APIs the way a shop's peak would: creates or
 * reuses a catalog, sends orders at a fixed rate or concurrency, watches them complete, and
 * reports throughput, latency (server timestamps: createdAt to the final status) and the audit.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { graphqlClient, type GraphqlClient, type GraphqlResponse } from '@stockflow/client';
import { auditPlatform, type AuditReport } from './audit.ts';
import { ensureCatalog } from './catalog.ts';
import { httpPipe } from './http-pipe.ts';
import { summarize, type Summary } from './stats.ts';

export interface LoadOptions {
  ordersUrl: string;
  inventoryUrl: string;
  orders: number;
  /** Orders per second; or undefined to use `concurrency` requests in flight. */
  rate?: number | undefined;
  concurrency: number;
  products: number;
  /** SKU prefix of the catalog (default `LG`): an existing catalog is reused as it stands. */
  catalog?: string | undefined;
  hot: number;
  /** Share of orders that ask for a hot product. */
  hotShare: number;
  stock: number;
  hotStock: number;
  /**
   * Locations the catalog is stocked at, MAIN and `LOC-2`... (default 1: MAIN alone). Each product
   * that is not hot lives at one of them in turn, so an order of two products that live apart is
   * split across locations; each hot product's stock is spread over all of them, so a doorbuster
   * empties one location after another in priority order. Applies to the products this run creates.
   */
  locations?: number | undefined;
  /** How long to wait for the last orders to complete. */
  settleTimeoutMs: number;
  /** Skip the audit (it reads every order and product; slow on a large database). */
  audit: boolean;
  /** An admin bearer token, when the platform requires authentication. */
  token?: string | undefined;
  /** Share of the confirmed orders to pay (recordPayment, for their total), 0..1; default 0. */
  payShare?: number | undefined;
  /** How long after seeing an order confirmed it is paid. */
  payAfterMs?: number | undefined;
  /** Called once the catalog is ready and the connections open, right before the first order is sent. */
  onStart?: (() => Promise<void> | void) | undefined;
}

/** What the payment behaviour did. */
export interface PaymentsReport {
  share: number;
  afterMs: number;
  /** Orders of the run seen CONFIRMED (the ones a share of which is paid). */
  confirmed: number;
  /** recordPayment answered PAID. */
  paid: number;
  /** recordPayment answered REFUND_REQUESTED, by reason (the hold was over, most likely). */
  refused: Record<string, number>;
  /** recordPayment failed, by error code; or the order had no total to pay. */
  errors: Record<string, number>;
  /** Orders of the run cancelled because their payment hold ran out. */
  expired: number;
}

export interface LoadReport {
  runId: string;
  options: Omit<LoadOptions, 'ordersUrl' | 'inventoryUrl'>;
  startedAt: string;
  sent: number;
  accepted: number;
  failed: number;
  errors: Record<string, number>;
  outcomes: Record<OrderStatus, number>;
  payments: PaymentsReport;
  stuck: string[];
  acceptSeconds: number;
  completeSeconds: number;
  acceptedPerSecond: number;
  completedPerSecond: number;
  latencyMs: Summary;
  /** Per second since the start: orders accepted and completed, and latency percentiles of those completed. */
  timeline: { second: number; accepted: number; completed: number; p50: number; p99: number }[];
  audit: AuditReport | null;
  ok: boolean;
}

export interface Progress {
  elapsedMs: number;
  sent: number;
  accepted: number;
  failed: number;
  confirmed: number;
  paid: number;
  cancelled: number;
  pending: number;
}

type OrderStatus = 'PENDING' | 'CONFIRMED' | 'PAID' | 'CANCELLED' | 'FULFILLED';

/** What each of the load's connections is opened with: the cheapest operation there is. */
export const OPEN_CONNECTION = JSON.stringify({ query: '{ __typename }' });
const CREATE_ORDER = 'mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }';
const RECORD_PAYMENT = 'mutation($input: RecordPaymentInput!) { recordPayment(input: $input) { outcome reason } }';
/** The Order Service's reason for an order whose payment hold ran out. */
const EXPIRED_REASON = /^Payment not received by /;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface FinalOrder {
  id: string;
  status: OrderStatus;
  reason: string | null;
  createdAt: string;
  updatedAt: string;
}

interface DecidedOrder {
  id: string;
  status: OrderStatus;
  totalCents: number | null;
  currency: string | null;
  updatedAt: string;
}

/**
 * The payment behaviour: follows the run's orders until inventory decides them (their ids polled,
 * oldest first) and pays `share` of the confirmed ones `afterMs` after seeing them confirmed,
 * through recordPayment for their total. Also keeps when each order was decided, so that the
 * latency stays creation to decision when a payment moves the order again later.
 */
function payer(orders: GraphqlClient, runId: string, share: number, afterMs: number, concurrency: number) {
  const undecided = new Set<string>();
  const decidedAt = new Map<string, number>();
  const due: { order: DecidedOrder; at: number }[] = [];
  const inFlight = new Set<Promise<void>>();
  const report: Omit<PaymentsReport, 'expired'> = { share, afterMs, confirmed: 0, paid: 0, refused: {}, errors: {} };
  let chosen = 0;
  let placing = true;
  let stopBy = Infinity;
  const count = (into: Record<string, number>, key: string) => (into[key] = (into[key] ?? 0) + 1);

  const poll = async () => {
    // Oldest first, a few pages a round: those are the ones inventory decides first.
    const ids = [...undecided].slice(0, 2_500);
    for (let i = 0; i < ids.length; i += 500) {
      const data = await orders.data<{ orders: { nodes: DecidedOrder[] } }>(
        'query($ids: [ID!]) { orders(ids: $ids, first: 500) { nodes { id status totalCents currency updatedAt } } }',
        { ids: ids.slice(i, i + 500) },
      );
      for (const o of data.orders.nodes) {
        if (o.status === 'PENDING') continue;
        undecided.delete(o.id);
        decidedAt.set(o.id, Date.parse(o.updatedAt));
        if (o.status !== 'CONFIRMED') continue;
        report.confirmed += 1;
        // Exactly the share of those confirmed so far, rather than a coin toss per order.
        if (chosen + 1 > share * report.confirmed + 1e-9) continue;
        chosen += 1;
        due.push({ order: o, at: Date.now() + afterMs });
      }
    }
  };

  const pay = async (order: DecidedOrder) => {
    if (order.totalCents === null || order.currency === null) {
      count(report.errors, 'NO_TOTAL');
      return;
    }
    try {
      const res = await orders.request<{ recordPayment: { outcome: string; reason: string | null } }>(RECORD_PAYMENT, {
        input: { orderId: order.id, paymentId: `loadgen-${runId}-${order.id}`, amountCents: order.totalCents, currency: order.currency },
      });
      const recorded = res.data?.recordPayment;
      if (recorded?.outcome === 'PAID') report.paid += 1;
      else if (recorded) count(report.refused, recorded.reason ?? recorded.outcome);
      else count(report.errors, String(res.errors?.[0]?.extensions?.code ?? `HTTP ${res.status}`));
    } catch (error) {
      count(report.errors, (error as { code?: string }).code ?? 'NETWORK');
    }
  };

  const running = (async () => {
    while (Date.now() < stopBy && (placing || undecided.size > 0 || due.length > 0 || inFlight.size > 0)) {
      if (undecided.size > 0) await poll().catch(() => undefined);
      while (due.length > 0 && (due[0] as (typeof due)[number]).at <= Date.now() && inFlight.size < concurrency) {
        const p = pay((due.shift() as (typeof due)[number]).order).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      await sleep(inFlight.size >= concurrency ? 20 : 250);
    }
    await Promise.all(inFlight);
    // Chosen but never sent: the run ended first (orders still PENDING at the settle timeout).
    if (due.length > 0) report.errors.NOT_SENT = (report.errors.NOT_SENT ?? 0) + due.length;
  })();

  return {
    report,
    decidedAt,
    follow: (id: string) => undecided.add(id),
    /** Every order is placed: ends once each is decided and its payment sent, or at `by` (ms since the epoch). */
    async finish(by: number) {
      placing = false;
      stopBy = by;
      await running;
    },
  };
}

export async function runLoad(options: LoadOptions, onProgress?: (p: Progress) => void): Promise<LoadReport> {
  const orders = graphqlClient(options.ordersUrl, { token: options.token });
  const inventory = graphqlClient(options.inventoryUrl, { token: options.token });
  const intake = httpPipe(options.ordersUrl, options.concurrency, options.token);
  const runId = randomUUID().slice(0, 8);
  const customerId = `loadgen-${runId}`;
  const catalog = await ensureCatalog(inventory, options);
  const normal = catalog.all.slice(options.hot);
  const pick = (list: number[]) => list[randomInt(list.length)] as number;

  // Every connection accepted before the clock starts (httpPipe's open says why).
  try {
    await intake.open(OPEN_CONNECTION);
    await options.onStart?.();
  } catch (error) {
    intake.close();
    throw error;
  }

  const payShare = options.payShare ?? 0;
  const payAfterMs = options.payAfterMs ?? 0;
  // Only a run that pays follows its orders one by one: the others keep today's requests.
  const payments = payShare > 0 ? payer(orders, runId, payShare, payAfterMs, Math.min(options.concurrency, 100)) : undefined;

  const start = Date.now();
  const startedAt = new Date(start).toISOString();
  const accepted: { id: string; at: number }[] = [];
  const errors: Record<string, number> = {};
  let sent = 0;
  let failed = 0;

  const placeOne = async () => {
    sent += 1;
    const hot = catalog.hot.length > 0 && Math.random() < options.hotShare;
    const items = [{ productId: String(hot ? pick(catalog.hot) : pick(normal.length > 0 ? normal : catalog.all)), quantity: 1 }];
    if (!hot && normal.length > 1 && Math.random() < 0.3) items.push({ productId: String(pick(normal)), quantity: randomInt(1, 3) });
    try {
      const res = await intake.post(JSON.stringify({ query: CREATE_ORDER, variables: { input: { customerId, items } } }));
      let body: GraphqlResponse<{ createOrder: { id: string } }> = {};
      try {
        body = JSON.parse(res.body) as typeof body;
      } catch {
        /* counted below by its HTTP status */
      }
      if (body.data?.createOrder) {
        accepted.push({ id: body.data.createOrder.id, at: Date.now() });
        payments?.follow(body.data.createOrder.id);
      } else {
        failed += 1;
        const code = String(body.errors?.[0]?.extensions?.code ?? `HTTP ${res.status}`);
        errors[code] = (errors[code] ?? 0) + 1;
      }
    } catch (error) {
      failed += 1;
      const code = (error as { code?: string }).code ?? 'NETWORK';
      errors[code] = (errors[code] ?? 0) + 1;
    }
  };

  const counts = { confirmed: 0, paid: 0, cancelled: 0, pending: 0 };
  const count = async (status: string) =>
    (
      await orders.data<{ orders: { totalCount: number } }>(
        `{ orders(customerId: "${customerId}", status: ${status}, first: 0) { totalCount } }`,
      )
    ).orders.totalCount;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      try {
        [counts.confirmed, counts.paid, counts.cancelled, counts.pending] = await Promise.all([
          count('CONFIRMED'),
          count('PAID'),
          count('CANCELLED'),
          count('PENDING'),
        ]);
      } catch {
        /* the platform may be briefly unavailable; keep the last counts */
      }
      onProgress?.({ elapsedMs: Date.now() - start, sent, accepted: accepted.length, failed, ...counts });
      await sleep(1_000);
    }
  })();

  if (options.rate) {
    // A fixed arrival rate, whatever the latency: the way shoppers arrive.
    const inFlight = new Set<Promise<void>>();
    for (let i = 0; i < options.orders; i += 1) {
      const due = start + (i * 1_000) / options.rate;
      if (due > Date.now()) await sleep(due - Date.now());
      if (inFlight.size >= options.concurrency) await Promise.race(inFlight);
      const p = placeOne().finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await Promise.all(inFlight);
  } else {
    let next = 0;
    await Promise.all(
      Array.from({ length: options.concurrency }, async () => {
        while (next < options.orders) {
          next += 1;
          await placeOne();
        }
      }),
    );
  }
  const acceptDone = Date.now();
  intake.close();

  const deadline = Date.now() + options.settleTimeoutMs;
  while (Date.now() < deadline) {
    const pending = await count('PENDING').catch(() => Number.NaN);
    if (pending === 0) break;
    await sleep(200);
  }
  // The last payments are due payAfterMs after the last confirmation; a little more for their answers.
  await payments?.finish(Date.now() + payAfterMs + 30_000);
  watching = false;
  await watcher;

  const ids = accepted.map((a) => a.id);
  const finals: FinalOrder[] = [];
  for (let i = 0; i < ids.length; i += 500) {
    const data = await orders.data<{ orders: { nodes: FinalOrder[] } }>(
      'query($ids: [ID!]) { orders(ids: $ids, first: 500) { nodes { id status reason createdAt updatedAt } } }',
      { ids: ids.slice(i, i + 500) },
    );
    finals.push(...data.orders.nodes);
  }
  const outcomes: Record<OrderStatus, number> = { CONFIRMED: 0, PAID: 0, CANCELLED: 0, FULFILLED: 0, PENDING: 0 };
  for (const o of finals) outcomes[o.status] += 1;
  const done = finals.filter((o) => o.status !== 'PENDING');
  // Completed when inventory decided it: a payment or an expiry later moves updatedAt again.
  const completedAt = (o: FinalOrder) => payments?.decidedAt.get(o.id) ?? Date.parse(o.updatedAt);
  const latencies = done.map((o) => completedAt(o) - Date.parse(o.createdAt));
  const lastCompletion = Math.max(start, ...done.map(completedAt));

  const seconds = Math.max(1, Math.ceil((Math.max(lastCompletion, acceptDone) - start) / 1_000));
  const timeline = Array.from({ length: seconds }, (_, second) => {
    const inSecond = (t: number) => t >= start + second * 1_000 && t < start + (second + 1) * 1_000;
    const completed = done.filter((o) => inSecond(completedAt(o)));
    const l = summarize(completed.map((o) => completedAt(o) - Date.parse(o.createdAt)));
    return { second, accepted: accepted.filter((a) => inSecond(a.at)).length, completed: completed.length, p50: l.p50, p99: l.p99 };
  });

  const audit = options.audit
    ? await auditPlatform({ orders: options.ordersUrl, inventory: options.inventoryUrl, token: options.token })
    : null;
  const stuck = finals.filter((o) => o.status === 'PENDING').map((o) => o.id);
  const acceptSeconds = (acceptDone - start) / 1_000;
  const completeSeconds = (lastCompletion - start) / 1_000;
  return {
    runId,
    options: {
      orders: options.orders,
      rate: options.rate,
      concurrency: options.concurrency,
      products: options.products,
      catalog: options.catalog,
      hot: options.hot,
      hotShare: options.hotShare,
      stock: options.stock,
      hotStock: options.hotStock,
      locations: options.locations ?? 1,
      settleTimeoutMs: options.settleTimeoutMs,
      audit: options.audit,
      payShare,
      payAfterMs,
    },
    startedAt,
    sent,
    accepted: accepted.length,
    failed,
    errors,
    outcomes,
    payments: {
      ...(payments?.report ?? { share: 0, afterMs: payAfterMs, confirmed: 0, paid: 0, refused: {}, errors: {} }),
      expired: finals.filter((o) => o.status === 'CANCELLED' && EXPIRED_REASON.test(o.reason ?? '')).length,
    },
    stuck,
    acceptSeconds,
    completeSeconds,
    acceptedPerSecond: accepted.length / Math.max(acceptSeconds, 0.001),
    completedPerSecond: done.length / Math.max(completeSeconds, 0.001),
    latencyMs: summarize(latencies),
    timeline,
    audit,
    ok: stuck.length === 0 && (audit?.ok ?? true),
  };
}
