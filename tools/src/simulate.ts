/**
 * `npm run simulate`: plays another team's service on the wire, in one of two modes.
 * - `orders` (the default): another team's Order Service. Publishes OrderCreated in the
 *   contract's exact format to `orders` and prints every StockReserved / StockRejected as it
 *   arrives, until each order is answered or the timeout passes.
 * - `payments`: a payment service (simulate-payments.ts). Pays confirmed orders on `payments`
 *   and reports what the Order Service kept and what it asked to give back.
 */
import { randomInt } from 'node:crypto';
import { Connection } from 'rabbitmq-client';
import { z } from 'zod';
import { exchanges, JSON_CONTENT_TYPE, routeOf, type OrderCreated } from '@stockflow/contracts';
import { fail, fraction, parseCli, requireApi, wholeNumber } from './cli.ts';
import { simulatePayments } from './simulate-payments.ts';

const MODES = ['orders', 'payments'] as const;

const ordersUsage = `Usage: npm run simulate -- [orders] [options]      (or: npm run simulate -- payments --help)
  --orders N          orders to publish (default 5, at most 100000)
  --products LIST     product ids to order from, comma-separated (default 1,2,3)
  --max-quantity N    each line asks for 1..N units (default 3)
  --lines N           lines per order, 1..N (default 2)
  --prefix TEXT       order id prefix (default SIM-<time>)
  --amqp-url URL      broker (default $AMQP_URL or amqp://guest:guest@127.0.0.1:5672)
  --timeout S         seconds to wait for the answers (default 30)`;

const paymentsUsage = `Usage: npm run simulate -- payments [options]
Plays a payment service: watches order.confirmed, looks up each order's total in the Order API,
and publishes PaymentSucceeded / PaymentFailed on the payments exchange. Each confirmed order
gets one role, in these shares (the rest are never paid, and expire):
  --pay-share F        paid once, on time (default 0.7)
  --fail-share F       a failed attempt; every other one then paid with a new attempt (default 0.1)
  --duplicate-share F  one payment sent twice, the same payment id: recorded once (default 0.05)
  --double-share F     charged twice, two payment ids: the second is refunded (default 0.05)
  --late-share F       paid after paymentDueAt: refunded, the order expires (default 0.05)
  --delay-ms N         about how long after the confirmation it pays (default 2000)
  --duration S         seconds to take confirmed orders (default 60)
  --max-orders N       or stop taking them after N
  --linger S           then at most S seconds to send the rest (late ones wait for their hold)
                       and collect OrderPaid / RefundRequested (default 30)
  --orders-url URL     the Order API (default http://localhost:8001/graphql)
  --token TOKEN        admin bearer token, when the Order API requires one (default $STOCKFLOW_TOKEN)
  --amqp-url URL       broker (default $AMQP_URL or amqp://guest:guest@127.0.0.1:5672)
Exits 1 when an order did not end as its role should (no OrderPaid, a refund missing or unexpected).`;

const amqpUrl = z
  .string()
  .regex(/^amqps?:\/\//, 'must start with amqp:// or amqps://')
  .default(process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672');
const hideCredentials = (url: string) => url.replace(/\/\/[^@]*@/, '//');

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
      'delay-ms': { type: 'string' },
      duration: { type: 'string' },
      'max-orders': { type: 'string' },
      linger: { type: 'string' },
      'orders-url': { type: 'string' },
      token: { type: 'string' },
      'amqp-url': { type: 'string' },
    },
    z
      .object({
        'pay-share': fraction.default(0.7),
        'fail-share': fraction.default(0.1),
        'duplicate-share': fraction.default(0.05),
        'double-share': fraction.default(0.05),
        'late-share': fraction.default(0.05),
        'delay-ms': wholeNumber(3_600_000, { zero: true }).default(2_000),
        duration: wholeNumber(86_400).default(60),
        'max-orders': wholeNumber(1_000_000).optional(),
        linger: wholeNumber(86_400, { zero: true }).default(30),
        'orders-url': z.string().url('must be a URL like http://localhost:8001/graphql').default('http://localhost:8001/graphql'),
        token: z.string().min(1, 'must not be empty').optional(),
        'amqp-url': amqpUrl,
      })
      .refine((a) => a['pay-share'] + a['fail-share'] + a['duplicate-share'] + a['double-share'] + a['late-share'] <= 1 + 1e-9, {
        message: 'the five shares add up to more than 1',
        path: ['pay-share'],
      }),
    argv,
  );
  const token = args.token ?? (process.env.STOCKFLOW_TOKEN || undefined);
  await requireApi('Order Service', args['orders-url'], token, 'npm run token -- --role admin --sub payments');
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  let report;
  try {
    report = await simulatePayments({
      amqpUrl: args['amqp-url'],
      ordersUrl: args['orders-url'],
      token,
      shares: {
        pay: args['pay-share'],
        fail: args['fail-share'],
        duplicate: args['duplicate-share'],
        double: args['double-share'],
        late: args['late-share'],
      },
      delayMs: args['delay-ms'],
      durationMs: args.duration * 1_000,
      maxOrders: args['max-orders'],
      lingerMs: args.linger * 1_000,
      signal: stop.signal,
      log: (line) => console.log(line),
    });
  } catch (error) {
    fail(`cannot reach RabbitMQ at ${hideCredentials(args['amqp-url'])}: ${(error as Error).message}`);
  }
  const r = report;
  const skipped = r.orders.filter((o) => o.skipped).length;
  const ours = new Set(r.orders.flatMap((o) => o.payments.map((p) => p.paymentId)));
  const own = r.refunds.filter((x) => ours.has(x.payment_id));
  console.log(`
${r.orders.length} confirmed orders taken: ${Object.entries(r.roles)
    .map(([role, n]) => `${role} ${n}`)
    .join(', ')}${skipped ? ` (${skipped} skipped, see above)` : ''}
  sent         ${r.sent.succeeded} PaymentSucceeded, ${r.sent.failed} PaymentFailed
  paid         ${r.paid} orders (OrderPaid)
  give back    ${own.length} refunds requested${
    Object.keys(r.refundedCents).length
      ? `: ${Object.entries(r.refundedCents)
          .map(([currency, cents]) => `${(cents / 100).toFixed(2)} ${currency}`)
          .join(', ')}`
      : ''
  }${r.refunds.length > own.length ? ` (and ${r.refunds.length - own.length} for payments of others)` : ''}${own
    .map((x) => `\n    ${x.payment_id}  ${x.order_id}  ${x.amount_cents} ${x.currency}  ${x.reason}`)
    .join('')}
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
    },
    z.object({
      orders: wholeNumber(100_000).default(5),
      products: z
        .string()
        .default('1,2,3')
        .transform((s, ctx) => {
          const ids = s.split(',').map((p) => Number(p.trim()));
          if (ids.some((id) => !Number.isInteger(id) || id <= 0)) {
            ctx.addIssue({ code: 'custom', message: 'must be positive integer ids separated by commas, e.g. 1,2,3' });
          }
          return ids;
        }),
      'max-quantity': wholeNumber(1_000).default(3),
      lines: wholeNumber(50).default(2),
      prefix: z
        .string()
        .min(1)
        .max(60)
        .default(`SIM-${Date.now().toString(36)}`),
      'amqp-url': amqpUrl,
      timeout: wholeNumber(3_600).default(30),
    }),
    argv,
  );

  const connection = new Connection({ url: args['amqp-url'], retryLow: 200, retryHigh: 1_000 });
  try {
    await connection.onConnect(5_000);
  } catch (error) {
    // onConnect has already closed the connection on failure.
    fail(`cannot reach RabbitMQ at ${hideCredentials(args['amqp-url'])}: ${(error as Error).message}`);
  }

  const pending = new Set<string>();
  const counts = { reserved: 0, rejected: 0 };
  let finish: () => void = () => undefined;
  const allAnswered = new Promise<void>((resolve) => (finish = resolve));

  const listener = connection.createConsumer(
    {
      queue: '',
      queueOptions: { exclusive: true, autoDelete: true },
      exchanges: exchanges.map((e) => ({ exchange: e.exchange, type: e.type, durable: e.durable })),
      queueBindings: [routeOf('StockReserved'), routeOf('StockRejected')],
    },
    (msg) => {
      const body = (Buffer.isBuffer(msg.body) ? JSON.parse(msg.body.toString()) : msg.body) as { order_id?: string };
      if (!body.order_id || !pending.has(body.order_id)) return;
      pending.delete(body.order_id);
      if (msg.routingKey === routeOf('StockReserved').routingKey) counts.reserved += 1;
      else counts.rejected += 1;
      console.log(`${msg.routingKey.padEnd(15)} ${JSON.stringify(body)}`);
      if (pending.size === 0) finish();
    },
  );
  await new Promise<void>((resolve) => listener.once('ready', () => resolve()));

  const publisher = connection.createPublisher({ confirm: true });
  const orders: OrderCreated[] = Array.from({ length: args.orders }, (_, i) => ({
    event: 'OrderCreated',
    order_id: `${args.prefix}-${i + 1}`,
    items: Array.from({ length: randomInt(1, args.lines + 1) }, () => ({
      product_id: args.products[randomInt(args.products.length)] as number,
      quantity: randomInt(1, args['max-quantity'] + 1),
    })),
  }));
  for (const order of orders) pending.add(order.order_id);
  const route = routeOf('OrderCreated');
  await Promise.all(
    orders.map((order) => publisher.send({ ...route, contentType: JSON_CONTENT_TYPE, durable: true }, JSON.stringify(order))),
  );
  console.log(`published ${orders.length} OrderCreated to ${route.exchange}/${route.routingKey}; waiting for answers...`);

  const timedOut = await Promise.race([
    allAnswered.then(() => false),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(true), args.timeout * 1_000).unref()),
  ]);
  console.log(`reserved ${counts.reserved}, rejected ${counts.rejected}, unanswered ${pending.size}`);
  await listener.close();
  await publisher.close();
  await connection.close();
  if (timedOut) fail(`timed out after ${args.timeout} s with ${pending.size} orders unanswered (is the Inventory Service running?)`);
}
