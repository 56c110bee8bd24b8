/**
 * `npm run simulate`: plays another team's service on the wire, in one of two modes, against this
 * machine's platform unless told otherwise (--allow-remote), and leaves its stock as it found it
 * unless told to keep what it did (--keep).
 * - `orders` (the default): another team's Order Service (simulate-orders.ts). Publishes
 *   OrderCreated and prints each answer; then cancels the orders it left holding stock.
 * - `payments`: a payment service (simulate-payments/). Places orders of its own, pays them on
 *   `payments` as each one's role says, and reports what the Order Service kept and what it asked
 *   to give back; then cancels those still holding stock.
 */
import { z } from 'zod';
import { AppError, env } from '@stockflow/platform';
import { safeUrl } from '@stockflow/observability';
import { fail, fraction, parseCli, requireApi, wholeNumber } from './cli.ts';
import { simulateOrders } from './simulate-orders.ts';
import { simulatePayments } from './simulate-payments/run.ts';
import { requireLocal } from './simulator.ts';

const MODES = ['orders', 'payments'] as const;

const ordersUsage = `Usage: npm run simulate -- [orders] [options]      (or: npm run simulate -- payments --help)
Publishes OrderCreated as another team's Order Service would and prints each answer. At the end it
cancels (OrderCancelled) the orders it left holding stock and waits for inventory to release them.
  --orders N          orders to publish (default 5, at most 100000)
  --products LIST     product ids to order from, comma-separated (default 1,2,3)
  --max-quantity N    each line asks for 1..N units (default 3)
  --lines N           lines per order, 1..N (default 2)
  --prefix TEXT       order id prefix (default SIM-<time>)
  --timeout S         seconds to wait for the answers, and then for the releases (default 30)
  --keep              leave the reserved orders holding their stock (for good: no Order Service knows them)
  --amqp-url URL      broker (default $AMQP_URL or amqp://guest:guest@127.0.0.1:5672)
  --allow-remote      run against a broker that is not on this machine`;

const paymentsUsage = `Usage: npm run simulate -- payments [options]
Plays a payment service for orders of its own: places them through the Order API (for a customer
of its own), watches order.confirmed for them, and publishes PaymentSucceeded / PaymentFailed on
the payments exchange. It pays no other order, and takes no message from another party's queue.
Each of its orders gets one role, in these shares (the rest are never paid):
  --pay-share F        paid once, on time (default 0.7)
  --fail-share F       a failed attempt; every other one then paid with a new attempt (default 0.1)
  --duplicate-share F  one payment sent twice, the same payment id: recorded once (default 0.05)
  --double-share F     charged twice, two payment ids: the second is refunded (default 0.05)
  --late-share F       paid after paymentDueAt: refunded, the order expires (default 0.05)
  --orders N           orders to place (default 20, at most 10000)
  --products LIST      product ids, comma-separated: one unit of one each, in turn (default 1,2,3)
  --delay-ms N         about how long after the confirmation it pays (default 2000)
  --timeout S          seconds the run may take: placing, paying (late ones wait for their hold)
                       and collecting OrderPaid / RefundRequested (default 60)
  --keep               leave its orders as they end; otherwise those still holding stock (unpaid,
                       or paid: their payment is then asked back) are cancelled at the end
  --orders-url URL     the Order API (default http://localhost:8001/graphql)
  --token TOKEN        admin bearer token, when the Order API requires one (default $STOCKFLOW_TOKEN)
  --amqp-url URL       broker (default $AMQP_URL or amqp://guest:guest@127.0.0.1:5672)
  --allow-remote       run against a broker or an Order API that is not on this machine
Exits 1 when an order did not end as its role should (no OrderPaid, a refund missing or unexpected).`;

const amqpUrl = env.amqpUrls().default(process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672');
const productIds = z
  .string()
  .default('1,2,3')
  .transform((s, ctx) => {
    const ids = s.split(',').map((p) => Number(p.trim()));
    if (ids.some((id) => !Number.isInteger(id) || id <= 0)) {
      ctx.addIssue({ code: 'custom', message: 'must be positive integer ids separated by commas, e.g. 1,2,3' });
    }
    return ids;
  });
/** The way a simulation fails: a refusal of its own (a remote broker) as it is, anything else as the broker being unreachable. */
function failRun(error: unknown, url: string): never {
  fail(error instanceof AppError ? error.message : `cannot reach RabbitMQ at ${safeUrl(url)}: ${(error as Error).message}`);
}

const [first, ...rest] = process.argv.slice(2);
const named = first !== undefined && !first.startsWith('-');
const mode = named ? first : 'orders';
if (!(MODES as readonly string[]).includes(mode)) fail(`unknown mode "${mode}": one of ${MODES.join(', ')}\n\n${ordersUsage}`);
const argv = named ? rest : process.argv.slice(2);
if (mode === 'payments') await payments(argv);
else await orders(argv);

async function payments(argv: string[]) {
  const args = parseCli(
    paymentsUsage,
    {
      'pay-share': { type: 'string' },
      'fail-share': { type: 'string' },
      'duplicate-share': { type: 'string' },
      'double-share': { type: 'string' },
      'late-share': { type: 'string' },
      orders: { type: 'string' },
      products: { type: 'string' },
      'delay-ms': { type: 'string' },
      timeout: { type: 'string' },
      keep: { type: 'boolean' },
      'orders-url': { type: 'string' },
      token: { type: 'string' },
      'amqp-url': { type: 'string' },
      'allow-remote': { type: 'boolean' },
    },
    z
      .object({
        'pay-share': fraction.default(0.7),
        'fail-share': fraction.default(0.1),
        'duplicate-share': fraction.default(0.05),
        'double-share': fraction.default(0.05),
        'late-share': fraction.default(0.05),
        orders: wholeNumber(10_000).default(20),
        products: productIds,
        'delay-ms': wholeNumber(3_600_000, { zero: true }).default(2_000),
        timeout: wholeNumber(86_400).default(60),
        keep: z.boolean().default(false),
        'orders-url': z.string().url('must be a URL like http://localhost:8001/graphql').default('http://localhost:8001/graphql'),
        token: z.string().min(1, 'must not be empty').optional(),
        'amqp-url': amqpUrl,
        'allow-remote': z.boolean().default(false),
      })
      .refine((a) => a['pay-share'] + a['fail-share'] + a['duplicate-share'] + a['double-share'] + a['late-share'] <= 1 + 1e-9, {
        message: 'the five shares add up to more than 1',
        path: ['pay-share'],
      }),
    argv,
  );
  const token = args.token ?? (process.env.STOCKFLOW_TOKEN || undefined);
  const targets = { amqpUrl: args['amqp-url'], ordersUrl: args['orders-url'] };
  try {
    requireLocal(targets, args['allow-remote']);
  } catch (error) {
    failRun(error, args['amqp-url']);
  }
  await requireApi('Order Service', args['orders-url'], token, 'npm run token -- --role admin --sub payments');
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  let report;
  try {
    report = await simulatePayments({
      ...targets,
      token,
      products: args.products,
      orders: args.orders,
      shares: {
        pay: args['pay-share'],
        fail: args['fail-share'],
        duplicate: args['duplicate-share'],
        double: args['double-share'],
        late: args['late-share'],
      },
      delayMs: args['delay-ms'],
      timeoutMs: args.timeout * 1_000,
      keep: args.keep,
      allowRemote: args['allow-remote'],
      signal: stop.signal,
      log: (line) => console.log(line),
    });
  } catch (error) {
    failRun(error, args['amqp-url']);
  }
  const r = report;
  const skipped = r.orders.filter((o) => o.skipped).length;
  console.log(`
${r.orders.length} orders placed for customer ${r.customerId}: ${Object.entries(r.roles)
    .map(([role, n]) => `${role} ${n}`)
    .join(', ')}${skipped ? ` (${skipped} skipped, see above)` : ''}
  sent         ${r.sent.succeeded} PaymentSucceeded, ${r.sent.failed} PaymentFailed
  paid         ${r.paid} orders (OrderPaid)
  give back    ${r.refunds.length} refunds requested${
    Object.keys(r.refundedCents).length
      ? `: ${Object.entries(r.refundedCents)
          .map(([currency, cents]) => `${(cents / 100).toFixed(2)} ${currency}`)
          .join(', ')}`
      : ''
  }${r.refunds.map((x) => `\n    ${x.payment_id}  ${x.order_id}  ${x.amount_cents} ${x.currency}  ${x.reason}`).join('')}
  ${
    args.keep
      ? 'kept         its orders as they ended (--keep): the unpaid ones hold stock until their hold ends, the paid ones until fulfilled or cancelled'
      : `cancelled    ${r.cancelledAtEnd.length} of its orders still holding stock, to leave the stock as it was (a paid one's payment is asked back)`
  }
  ${r.ok ? 'every order ended as its role should' : `PROBLEMS:\n${r.problems.map((p) => `    ${p}`).join('\n')}`}`);
  process.exit(r.ok ? 0 : 1);
}

async function orders(argv: string[]) {
  const args = parseCli(
    ordersUsage,
    {
      orders: { type: 'string' },
      products: { type: 'string' },
      'max-quantity': { type: 'string' },
      lines: { type: 'string' },
      prefix: { type: 'string' },
      'amqp-url': { type: 'string' },
      timeout: { type: 'string' },
      keep: { type: 'boolean' },
      'allow-remote': { type: 'boolean' },
    },
    z.object({
      orders: wholeNumber(100_000).default(5),
      products: productIds,
      'max-quantity': wholeNumber(1_000).default(3),
      lines: wholeNumber(50).default(2),
      prefix: z
        .string()
        .min(1)
        .max(60)
        .default(`SIM-${Date.now().toString(36)}`),
      'amqp-url': amqpUrl,
      timeout: wholeNumber(3_600).default(30),
      keep: z.boolean().default(false),
      'allow-remote': z.boolean().default(false),
    }),
    argv,
  );
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  let r;
  try {
    r = await simulateOrders({
      amqpUrl: args['amqp-url'],
      orders: args.orders,
      products: args.products,
      maxQuantity: args['max-quantity'],
      lines: args.lines,
      prefix: args.prefix,
      timeoutMs: args.timeout * 1_000,
      keep: args.keep,
      allowRemote: args['allow-remote'],
      signal: stop.signal,
      log: (line) => console.log(line),
    });
  } catch (error) {
    failRun(error, args['amqp-url']);
  }
  console.log(`reserved ${r.reserved}, rejected ${r.rejected}, unanswered ${r.unanswered}`);
  if (r.backordered > 0) console.log(`${r.backordered} of the reserved orders had units backordered (promised beyond the stock on hand)`);
  if (args.keep) {
    if (r.holding.length > 0) {
      console.log(
        `kept ${r.holding.length} orders holding stock (--keep); nothing will release them (README, "The same on RabbitMQ and PostgreSQL", says how to start over)`,
      );
    }
  } else if (r.cancelled.length > 0) {
    console.log(`cancelled ${r.cancelled.length} orders to leave the stock as it was; inventory released ${r.released}`);
  }
  if (r.unanswered > 0)
    fail(`timed out after ${args.timeout} s with ${r.unanswered} orders unanswered (is the Inventory Service running?)`);
  if (r.holding.length > 0 && !args.keep) {
    fail(
      `${r.holding.length} cancelled orders were not released within ${args.timeout} s (is the Inventory Service running?): ${r.holding.join(', ')}`,
    );
  }
}
