import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { EXCHANGES, exchanges } from '@stockflow/contracts';
import { signToken } from '@stockflow/client';
import { eventually, graphqlClient, rawAmqp, type GraphqlClient, type RawAmqp, type ReceivedMessage } from '@stockflow/testing';
import { asyncApiFile } from './asyncapi.ts';
import { servicesUnderTest } from './services-under-test.ts';
import { simulatePayments } from './simulate-payments/run.ts';

const servicesUnavailable = inject('servicesUnavailable');
const SECRET = randomBytes(32).toString('hex');

type Ref = { $ref: string };
interface Doc {
  channels: Record<
    string,
    { address: string; messages: Record<string, Ref>; bindings: { amqp: { is: string; exchange?: { name: string } } } }
  >;
  operations: Record<string, { action: string; channel: Ref; messages: Ref[] }>;
}

/** What the committed document says is published where: for each event, the routes (`exchange routing-key`) it is sent on. */
async function documentedRoutes(): Promise<Map<string, Set<string>>> {
  const doc = parse(await readFile(asyncApiFile, 'utf8')) as Doc;
  const resolve = (ref: Ref): unknown =>
    ref.$ref
      .slice(2)
      .split('/')
      .reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], doc);
  const messageName = (ref: Ref) => (resolve(resolve(ref) as Ref) as { name: string }).name;
  const routes = new Map<string, Set<string>>();
  for (const op of Object.values(doc.operations).filter((o) => o.action === 'send')) {
    const channel = resolve(op.channel) as Doc['channels'][string];
    const exchange = channel.bindings.amqp.exchange?.name;
    if (channel.bindings.amqp.is !== 'routingKey' || exchange === undefined || exchange === EXCHANGES.deadLetter) continue;
    for (const name of op.messages.map(messageName))
      routes.set(name, (routes.get(name) ?? new Set()).add(`${exchange} ${channel.address}`));
  }
  return routes;
}

describe.skipIf(servicesUnavailable)('what the producers really publish, against docs/asyncapi.yaml', () => {
  const amqpUrl = inject('amqpUrl');
  const services = servicesUnderTest(amqpUrl, SECRET);
  let amqp: RawAmqp;
  let orders: GraphqlClient;
  let catalog: GraphqlClient;
  let ordersUrl: string;
  let admin: string;
  /** Per event exchange, everything published on it while the test ran, whoever published it. */
  const received: ReceivedMessage[][] = [];
  const published = () => received.flat();

  beforeAll(async () => {
    let inventoryUrl: string;
    ({ ordersUrl, inventoryUrl } = await services.start('wire', { CURRENCY: 'EUR' }));
    admin = await signToken(SECRET, { sub: 'wire-test', role: 'admin' });
    orders = graphqlClient(ordersUrl, { token: admin });
    catalog = graphqlClient(inventoryUrl, { token: admin });
    amqp = await rawAmqp(amqpUrl);
    for (const { exchange } of exchanges.filter((e) => e.exchange !== EXCHANGES.deadLetter)) {
      received.push((await amqp.listen(exchange, '#')).received);
    }
  });
  afterAll(async () => {
    await amqp?.close();
    await services.stop();
  });

  const product = async (stock: number, backorderLimit = 0) =>
    Number(
      (
        await catalog.data<{ createProduct: { id: string } }>(
          'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }',
          {
            input: {
              sku: `WIRE-${randomBytes(4).toString('hex')}`,
              name: 'Wired thing',
              priceCents: 1_000,
              initialStock: stock,
              backorderLimit,
            },
          },
        )
      ).createProduct.id,
    );
  const place = async (productId: number) =>
    (
      await orders.data<{ createOrder: { id: string } }>('mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }', {
        input: { customerId: 'wired', items: [{ productId: String(productId), quantity: 1 }] },
      })
    ).createOrder.id;
  const status = async (id: string) => (await orders.data<{ order: { status: string } }>(`{ order(id: "${id}") { status } }`)).order.status;

  it('publishes every documented event, each only on the route the document gives it', async () => {
    const documented = await documentedRoutes();
    const inStock = await product(100);
    const soldOut = await product(0);

    // Paid once, paid after a failed attempt, charged twice (refund requested): every payment event and OrderPaid.
    const report = await simulatePayments({
      amqpUrl,
      ordersUrl,
      token: admin,
      products: [inStock],
      orders: 3,
      shares: { pay: 1 / 3, fail: 1 / 3, duplicate: 0, double: 1 / 3, late: 0 },
      delayMs: 100,
      timeoutMs: 30_000,
      keep: true,
    });
    expect(report.problems).toEqual([]);
    const paid = report.orders.filter((o) => o.role === 'pay').map((o) => o.orderId);

    // Shipped: OrderFulfilled. Out of stock: StockRejected, then the Order Service cancels it and the stock is released.
    await orders.data('mutation($id: ID!) { fulfillOrder(id: $id) { id } }', { id: paid[0] });
    const rejected = await place(soldOut);
    await eventually(
      () => Promise.all([status(paid[0] as string), status(rejected)]),
      ([a, b]) => a === 'FULFILLED' && b === 'CANCELLED',
    );
    await eventually(
      () => Promise.resolve(published().map((m) => m.json as { event: string; order_id: string })),
      (bodies) => bodies.some((b) => b.event === 'StockReleased' && b.order_id === rejected),
    );

    // Promised before it is in stock, then received: BackorderFilled.
    const toCome = await product(0, 1);
    const backordered = await place(toCome);
    await eventually(
      () => status(backordered),
      (s) => s === 'CONFIRMED',
    );
    await catalog.data(`mutation { restock(productId: "${toCome}", quantity: 1) { id } }`);
    await eventually(
      () => Promise.resolve(published().map((m) => m.json as { event: string; order_id: string })),
      (bodies) => bodies.some((b) => b.event === 'BackorderFilled' && b.order_id === backordered),
    );

    const wrong = published()
      .map((m) => {
        const event = (m.json as { event: string }).event;
        return { event, route: `${m.exchange} ${m.routingKey}`, documented: [...(documented.get(event) ?? [])] };
      })
      .filter((m) => m.documented.length !== 1 || m.documented[0] !== m.route);
    expect(wrong, 'published on a route the document does not give the event').toEqual([]);
    expect(new Set(published().map((m) => (m.json as { event: string }).event))).toEqual(new Set(documented.keys()));
  });
});
