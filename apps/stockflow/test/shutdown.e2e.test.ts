import { getEventListeners } from 'node:events';
import pg from 'pg';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { graphqlClient } from '@stockflow/client';
import {
  createTestDatabase,
  eventually,
  sseSubscribe,
  startServiceProcess,
  startTcpProxy,
  testServers,
  viaProxy,
  type ServiceProcess,
} from '@stockflow/testing';
import { startPlatform, type RunningPlatform } from '../src/platform.ts';
import { embeddedEnv as freshEmbeddedEnv } from './embedded.ts';
import { purgeQueues } from './under-load.ts';

const servicesUnavailable = inject('servicesUnavailable');
const CREATE_ORDER = 'mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const SHUTDOWN_TIMEOUT_MS = 3_000;

/** `npm start` stopped: the dashboard beside the services, and the whole within bounded time. */
describe('the whole platform in one process, stopped', { timeout: 120_000 }, () => {
  let platform: RunningPlatform | undefined;
  const cleanup: (() => Promise<unknown>)[] = [];

  afterEach(async () => {
    await platform?.close();
    platform = undefined;
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  const embeddedEnv = async () => {
    const { env, remove } = await freshEmbeddedEnv('shutdown');
    cleanup.push(remove);
    return env;
  };
  const databases = async () => {
    const dbs = {
      inventory: await createTestDatabase('platform_shutdown_inventory'),
      orders: await createTestDatabase('platform_shutdown_orders'),
    };
    cleanup.push(() => Promise.all([dbs.inventory.drop(), dbs.orders.drop()]));
    return dbs;
  };
  const refused = (port: number) =>
    fetch(`http://127.0.0.1:${port}/`).then(
      () => 'answered',
      (error: unknown) => String((error as { cause?: { code?: string } }).cause?.code),
    );

  /** The distributed platform without authentication, given far longer to stop than a test waits: nothing may have to be cut. */
  const distributedPlatform = async () => {
    const dbs = await databases();
    await purgeQueues(inject('amqpUrl'));
    platform = await startPlatform({
      ...(await embeddedEnv()),
      AMQP_URL: inject('amqpUrl'),
      INVENTORY_DATABASE_URL: dbs.inventory.url,
      ORDERS_DATABASE_URL: dbs.orders.url,
      AUTH_DISABLED: 'true',
      SHUTDOWN_TIMEOUT_MS: '60000',
    });
    return { running: platform, dbs };
  };
  /** Holds `table` in a transaction of its own until `release`; resolves once a statement waits for it. */
  const holdTable = async (databaseUrl: string, table: string, mode: string) => {
    const lock = new pg.Client({ connectionString: databaseUrl });
    await lock.connect();
    cleanup.push(() => lock.end());
    await lock.query('BEGIN');
    await lock.query(`LOCK TABLE ${table} IN ${mode} MODE`);
    return {
      waitedFor: () =>
        eventually(
          async () =>
            (
              await lock.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND relation = $1::regclass`, [
                table,
              ])
            ).rows[0]?.n ?? 0,
          (n) => n > 0,
        ),
      release: () => lock.query('COMMIT'),
    };
  };
  /** A POST of a GraphQL request, its answer (status 0 when it got none). */
  const post = (url: string, query: string, variables?: Record<string, unknown>) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) }).then(
      async (res) => ({ status: res.status, body: (await res.json()) as unknown }),
      (error: unknown) => ({ status: 0, body: String(error) }),
    );
  /** Stops the platform; resolves, with its closing under way, once `port` no longer takes connections. */
  const closeUntilRefused = async (running: RunningPlatform, port: number) => {
    const closed = running.close();
    platform = undefined;
    cleanup.push(() => closed.catch(() => undefined));
    await eventually(
      () => refused(port),
      (outcome) => outcome === 'ECONNREFUSED',
    );
    return { closed };
  };

  it.skipIf(servicesUnavailable)(
    'lets a request under way through the dashboard finish, ends a subscription it passes on, and no longer listens',
    async () => {
      const { running, dbs } = await distributedPlatform();
      const watched = await graphqlClient(`http://127.0.0.1:${running.orders.port}/graphql`).data<{ createOrder: { id: string } }>(
        CREATE_ORDER,
        { input: { customerId: 'c', items: [{ productId: '1', quantity: 1 }] } },
      );
      const subscription = await sseSubscribe(
        `http://127.0.0.1:${running.dashboard.port}/api/graphql`,
        'subscription($id: ID!) { orderStatusChanged(id: $id) { id } }',
        { id: watched.createOrder.id },
      );
      cleanup.push(() => Promise.resolve(subscription.close()));
      // Every insert into `orders` waits for this transaction: the createOrder is accepted and under way.
      const lock = await holdTable(dbs.orders.url, 'orders', 'SHARE');
      const answer = post(`http://127.0.0.1:${running.dashboard.port}/api/graphql`, CREATE_ORDER, {
        input: { customerId: 'c', items: [{ productId: '1', quantity: 1 }] },
      });
      await lock.waitedFor();

      const { closed } = await closeUntilRefused(running, running.dashboard.port);
      await lock.release();
      const { status, body } = await answer;
      expect(status, JSON.stringify(body)).toBe(200);
      expect(body).toMatchObject({ data: { createOrder: { id: expect.any(String) as string } } });
      // The subscription ended with the Order Service's: the dashboard waited for nothing else.
      expect(await Promise.race([closed.then(() => 'closed'), sleep(30_000).then(() => 'still closing')])).toBe('closed');
    },
  );

  it.skipIf(servicesUnavailable)(
    'keeps both services running until the gateway has answered what it accepted, a request that still needs either of them',
    async () => {
      const { running, dbs } = await distributedPlatform();
      const productId = (
        await graphqlClient(`http://127.0.0.1:${running.inventory.port}/graphql`).data<{ createProduct: { id: string } }>(
          'mutation { createProduct(input: {sku: "LAMP", name: "Desk lamp", initialStock: 5}) { id } }',
        )
      ).createProduct.id;
      const orderId = (
        await graphqlClient(`http://127.0.0.1:${running.orders.port}/graphql`).data<{ createOrder: { id: string } }>(CREATE_ORDER, {
          input: { customerId: 'c', items: [{ productId, quantity: 1 }] },
        })
      ).createOrder.id;
      // Reading the products waits for this transaction: the gateway holds the request, the Order
      // Service's part of it answered, the Inventory Service's under way.
      const lock = await holdTable(dbs.inventory.url, 'products', 'ACCESS EXCLUSIVE');
      const answer = post(
        `http://127.0.0.1:${running.gateway.port}/graphql`,
        `{ order(id: "${orderId}") { items { quantity product { name } } } }`,
      );
      await lock.waitedFor();

      const { closed } = await closeUntilRefused(running, running.gateway.port);
      // What the gateway may still send to the Order Service (another field, a mutation) finds it running.
      expect(await refused(running.orders.port)).toBe('answered');
      await lock.release();
      expect(await answer).toEqual({
        status: 200,
        body: { data: { order: { items: [{ quantity: 1, product: { name: 'Desk lamp' } }] } } },
      });
      await closed;
    },
  );

  it('embedded: stops in time though an answer can no longer reach the Order Service, and delivers it at the next start', async () => {
    const env = { ...(await embeddedEnv()), SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) };
    platform = await startPlatform(env);
    const first = platform;
    const product = (
      await graphqlClient(`http://127.0.0.1:${first.inventory.port}/graphql`).data<{ createProduct: { id: string } }>(
        'mutation { createProduct(input: {sku: "S", name: "S", initialStock: 5}) { id } }',
      )
    ).createProduct.id;
    // The Inventory Service's database held (PGlite has one connection): it takes the OrderCreated
    // but cannot decide it before the Order Service's consumers have stopped.
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    const holding = first.inventory.db.transaction(() => released);
    const { id } = (
      await graphqlClient(`http://127.0.0.1:${first.orders.port}/graphql`).data<{ createOrder: { id: string } }>(CREATE_ORDER, {
        input: { customerId: 'c', items: [{ productId: product, quantity: 1 }] },
      })
    ).createOrder;

    const closed = first.close();
    platform = undefined;
    release();
    await holding;
    // Within what `npm start` gives it before it exits with code 1: nothing waits for the stopped consumer.
    expect(await Promise.race([closed.then(() => 'closed'), sleep(2 * SHUTDOWN_TIMEOUT_MS).then(() => 'still closing')])).toBe('closed');

    // The embedded broker stored the answer for the Order Service's queue; the next start delivers it.
    platform = await startPlatform(env);
    const orders = graphqlClient(`http://127.0.0.1:${platform.orders.port}/graphql`);
    expect(
      await eventually(
        async () => (await orders.data<{ order: { status: string } }>(`{ order(id: "${id}") { status } }`)).order.status,
        (status) => status === 'CONFIRMED',
      ),
    ).toBe('CONFIRMED');
  });

  it('embedded: leaves no listener on the deadline its parts share', async () => {
    platform = await startPlatform({ ...(await embeddedEnv()), SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) });
    const running = platform;
    await graphqlClient(`http://127.0.0.1:${running.orders.port}/graphql`).data(CREATE_ORDER, {
      input: { customerId: 'c', items: [{ productId: '1', quantity: 1 }] },
    });
    platform = undefined;
    const deadline = new AbortController();
    await running.close(deadline.signal);
    // Each part's wait gave its listener back: left on the signal, they added up to Node's leak warning at every stop.
    expect(getEventListeners(deadline.signal, 'abort')).toEqual([]);
  });

  it('embedded: a clean Ctrl+C prints one line saying it stopped, and no warning', async () => {
    // npm start's own log level: its log lines are printed too.
    const stockflow = await startServiceProcess('stockflow', { ...(await embeddedEnv()), LOG_LEVEL: 'info' }, 90_000);
    cleanup.push(() => stockflow.stop('SIGKILL'));
    await eventually(
      () => Promise.resolve(stockflow.output()),
      (output) => output.includes('Stop with Ctrl+C'),
      60_000,
    );
    const ordersPort = /Order Service GraphQL\s+http:\/\/localhost:(\d+)\//.exec(stockflow.output())?.[1];
    await graphqlClient(`http://127.0.0.1:${ordersPort}/graphql`).data(CREATE_ORDER, {
      input: { customerId: 'c', items: [{ productId: '1', quantity: 1 }] },
    });
    const before = stockflow.output().length;

    expect(await stockflow.stop('SIGINT')).toBe(0);
    const output = stockflow.output();
    const said = output.slice(before).split('\n').filter(Boolean);
    // Log lines (JSON) below warn, and one line for the person at the terminal, last.
    const human = said.filter((line) => !line.startsWith('{'));
    expect(human).toEqual(['Stockflow stopped.']);
    expect(said.at(-1)).toBe('Stockflow stopped.');
    for (const line of said.filter((l) => l.startsWith('{'))) expect((JSON.parse(line) as { level: number }).level, line).toBeLessThan(40);
    expect(output).not.toMatch(/Warning|\n\s+at /);
  });

  it.skipIf(servicesUnavailable)('exits with code 1 within twice SHUTDOWN_TIMEOUT_MS when its databases stop answering', async () => {
    const dbs = await databases();
    const postgres = new URL(testServers.postgresAdminUrl);
    const proxy = await startTcpProxy({ host: postgres.hostname, port: Number(postgres.port || 5432) });
    cleanup.push(() => proxy.close());
    await purgeQueues(inject('amqpUrl'));
    const timeoutMs = 2_000;
    const stockflow: ServiceProcess = await startServiceProcess('stockflow', {
      ...(await embeddedEnv()),
      LOG_LEVEL: 'info',
      AMQP_URL: inject('amqpUrl'),
      INVENTORY_DATABASE_URL: viaProxy(dbs.inventory.url, proxy.port),
      ORDERS_DATABASE_URL: viaProxy(dbs.orders.url, proxy.port),
      AUTH_DISABLED: 'true',
      SHUTDOWN_TIMEOUT_MS: String(timeoutMs),
    });
    cleanup.push(() => stockflow.stop('SIGKILL'));
    await eventually(
      () => Promise.resolve(stockflow.output()),
      (output) => output.includes('Stockflow is running'),
    );
    proxy.blackhole();

    const exited = stockflow.stop('SIGTERM');
    // A generous margin: what is checked is that it exits at all while the databases hang.
    const code = await Promise.race([exited, sleep(2 * timeoutMs + 15_000).then(() => 'still running')]);
    expect(code, stockflow.output()).toBe(1);
    expect(stockflow.output()).toMatch(/shutdown did not finish in time/);
  });
});
