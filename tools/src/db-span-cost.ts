/**
 * What database spans would cost (README "Traces"): `npx tsx tools/src/db-span-cost.ts`, against
 * the PostgreSQL and RabbitMQ of the tests (TEST_POSTGRES_URL, TEST_AMQP_URL). It counts the
 * statements one order runs in both services, then times a span around a hot-path statement
 * (Inventory's read of a product) in blocks A/B interleaved, each span exported over OTLP/HTTP
 * (protobuf) to a receiver in another process, as the services export theirs.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { ROOT_CONTEXT, SpanKind, trace, TraceFlags } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import pg from 'pg';
import { createLogger } from '@stockflow/observability';
import { createTestDatabase, createTestVhost, graphqlClient } from '@stockflow/testing';
import { loadInventoryConfig, startInventoryService } from '@stockflow/inventory';
import { loadOrdersConfig, startOrdersService } from '@stockflow/orders';

const ORDERS = 200;
const ROUNDS = 20;
const PER_BLOCK = 1_000;

const logger = createLogger({ name: 'db-span-cost', level: 'warn' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const vhost = await createTestVhost();
const [inventoryDb, ordersDb] = [await createTestDatabase('dbspan_inventory'), await createTestDatabase('dbspan_orders')];
const env = (url: string) => ({ DATABASE_URL: url, AMQP_URL: vhost.url, PORT: '0', HOST: '127.0.0.1', AUTH_DISABLED: 'true' });
const inventory = await startInventoryService(loadInventoryConfig(env(inventoryDb.url)), logger);
const orders = await startOrdersService(loadOrdersConfig({ ...env(ordersDb.url), PAYMENT_HOLD_SECONDS: '0' }), logger);

try {
  // 1. Statements per order: every query of the services' pools, less what they run idle.
  const { createProduct } = await graphqlClient(`http://127.0.0.1:${inventory.port}/graphql`).data<{ createProduct: { id: string } }>(
    `mutation { createProduct(input: {sku: "DBSPAN", name: "Measured", initialStock: 100000}) { id } }`,
  );
  const databases = new Set([inventoryDb.name, ordersDb.name]);
  // The script's own client, which asks whether the orders are done, is not counted.
  const check = new pg.Client({ connectionString: ordersDb.url });
  await check.connect();
  let statements = 0;
  const query = Object.getOwnPropertyDescriptor(pg.Client.prototype, 'query')?.value as (this: pg.Client, ...args: unknown[]) => unknown;
  Object.assign(pg.Client.prototype, {
    query(this: pg.Client, ...args: unknown[]) {
      if (this !== check && databases.has(this.database ?? '')) statements += 1;
      return query.apply(this, args);
    },
  });
  const window = 5_000;
  await sleep(window);
  const idle = statements;
  statements = 0;
  const started = Date.now();
  const client = graphqlClient(`http://127.0.0.1:${orders.port}/graphql`);
  for (let i = 0; i < ORDERS; i++)
    await client.data('mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }', {
      input: { customerId: 'dbspan', items: [{ productId: createProduct.id, quantity: 1 }] },
    });
  const confirmed = async () =>
    Number((await check.query<{ n: string }>(`SELECT count(*) AS n FROM orders WHERE status = 'CONFIRMED'`)).rows[0]?.n);
  while ((await confirmed()) < ORDERS) await sleep(100);
  const busy = statements;
  const elapsed = Date.now() - started;
  Object.assign(pg.Client.prototype, { query });
  await check.end();
  const perOrder = (busy - (idle * elapsed) / window) / ORDERS;
  console.log(
    `statements: ${busy} in ${elapsed} ms for ${ORDERS} orders, all confirmed, ${idle} in ${window} ms idle: ${perOrder.toFixed(1)} an order`,
  );

  // 2. A span around a statement, A/B interleaved.
  const receiver = spawn(
    process.execPath,
    [
      '-e',
      `require('node:http').createServer((q, s) => { q.resume(); q.on('end', () => s.writeHead(200).end()); }).listen(0, '127.0.0.1', function () { console.log(this.address().port); })`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const [port] = (await once(receiver.stdout, 'data')) as [Buffer];
  const provider = new BasicTracerProvider({
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `http://127.0.0.1:${String(port).trim()}/v1/traces` }))],
  });
  const tracer = provider.getTracer('db-span-cost');
  const parent = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
  });
  const db = new pg.Client({ connectionString: inventoryDb.url });
  await db.connect();
  const read = () => db.query('SELECT id, available, price_cents FROM products WHERE id = $1', [createProduct.id]);
  const block = async (spanned: boolean) => {
    const before = process.cpuUsage();
    for (let i = 0; i < PER_BLOCK; i++) {
      if (!spanned) {
        await read();
        continue;
      }
      const span = tracer.startSpan(
        'SELECT products',
        {
          kind: SpanKind.CLIENT,
          attributes: {
            'db.system.name': 'postgresql',
            'db.namespace': inventoryDb.name,
            'db.operation.name': 'SELECT',
            'db.collection.name': 'products',
            'db.query.summary': 'SELECT products',
            'server.address': '127.0.0.1',
            'server.port': 5432,
          },
        },
        parent,
      );
      await read();
      span.end();
    }
    const used = process.cpuUsage(before);
    return (used.user + used.system) / PER_BLOCK;
  };
  await block(false);
  await block(true);
  const [plain, spanned]: [number[], number[]] = [[], []];
  for (let round = 0; round < ROUNDS; round++) {
    if (round % 2 === 0) {
      plain.push(await block(false));
      spanned.push(await block(true));
    } else {
      spanned.push(await block(true));
      plain.push(await block(false));
    }
  }
  await provider.shutdown();
  await db.end();
  receiver.kill();
  const span = median(spanned) - median(plain);
  console.log(
    `CPU a statement (median of ${ROUNDS} blocks of ${PER_BLOCK}): ${median(plain).toFixed(1)} µs without a span, ${median(spanned).toFixed(1)} µs with one: ${span.toFixed(1)} µs a span`,
  );
  console.log(`a span per statement: ${(span * perOrder).toFixed(0)} µs of CPU an order`);
} finally {
  await orders.close();
  await inventory.close();
  await inventoryDb.drop();
  await ordersDb.drop();
  await vhost.remove();
}
