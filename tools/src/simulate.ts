/**
 * `npm run simulate`: plays another team's Order Service on the wire. Publishes OrderCreated in
 * the contract's exact format to `orders` and prints every StockReserved / StockRejected as it
 * arrives, until each order is answered or the timeout passes.
 */
import { randomInt } from 'node:crypto';
import { Connection } from 'rabbitmq-client';
import { z } from 'zod';
import { EXCHANGES, exchanges, JSON_CONTENT_TYPE, ROUTING_KEYS, type OrderCreated } from '@stockflow/contracts';
import { fail, parseCli, wholeNumber } from './cli.ts';

const usage = `Usage: npm run simulate -- [options]
  --orders N          orders to publish (default 5, at most 100000)
  --products LIST     product ids to order from, comma-separated (default 1,2,3)
  --max-quantity N    each line asks for 1..N units (default 3)
  --lines N           lines per order, 1..N (default 2)
  --prefix TEXT       order id prefix (default SIM-<time>)
  --amqp-url URL      broker (default $AMQP_URL or amqp://guest:guest@127.0.0.1:5672)
  --timeout S         seconds to wait for the answers (default 30)`;

const args = parseCli(
  usage,
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
    'amqp-url': z
      .string()
      .regex(/^amqps?:\/\//, 'must start with amqp:// or amqps://')
      .default(process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'),
    timeout: wholeNumber(3_600).default(30),
  }),
);

const connection = new Connection({ url: args['amqp-url'], retryLow: 200, retryHigh: 1_000 });
try {
  await connection.onConnect(5_000);
} catch (error) {
  // onConnect has already closed the connection on failure.
  fail(`cannot reach RabbitMQ at ${args['amqp-url'].replace(/\/\/[^@]*@/, '//')}: ${(error as Error).message}`);
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
    queueBindings: [
      { exchange: EXCHANGES.inventory, routingKey: ROUTING_KEYS.stockReserved },
      { exchange: EXCHANGES.inventory, routingKey: ROUTING_KEYS.stockRejected },
    ],
  },
  (msg) => {
    const body = (Buffer.isBuffer(msg.body) ? JSON.parse(msg.body.toString()) : msg.body) as { order_id?: string };
    if (!body.order_id || !pending.has(body.order_id)) return;
    pending.delete(body.order_id);
    if (msg.routingKey === ROUTING_KEYS.stockReserved) counts.reserved += 1;
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
await Promise.all(
  orders.map((order) =>
    publisher.send(
      { exchange: EXCHANGES.orders, routingKey: ROUTING_KEYS.orderCreated, contentType: JSON_CONTENT_TYPE, durable: true },
      JSON.stringify(order),
    ),
  ),
);
console.log(`published ${orders.length} OrderCreated to ${EXCHANGES.orders}/${ROUTING_KEYS.orderCreated}; waiting for answers...`);

const timedOut = await Promise.race([
  allAnswered.then(() => false),
  new Promise<boolean>((resolve) => setTimeout(() => resolve(true), args.timeout * 1_000).unref()),
]);
console.log(`reserved ${counts.reserved}, rejected ${counts.rejected}, unanswered ${pending.size}`);
await listener.close();
await publisher.close();
await connection.close();
if (timedOut) fail(`timed out after ${args.timeout} s with ${pending.size} orders unanswered (is the Inventory Service running?)`);
