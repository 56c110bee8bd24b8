import { randomInt } from 'node:crypto';
import { graphqlClient } from '@stockflow/client';
import { MAIN_LOCATION } from '@stockflow/contracts';
import { stockAt } from '@stockflow/loadgen';
import { splitUrlList } from '@stockflow/observability';
import { startServiceProcess, type Runnable, type ServiceProcess } from './process.ts';
import { startTcpProxy, viaProxy } from './proxy.ts';
import { createTestDatabase, testServers, type TestDatabase } from './services.ts';

type Proxy = Awaited<ReturnType<typeof startTcpProxy>>;

export interface Member {
  name: string;
  process: ServiceProcess;
  /** The member's own proxy to the broker; none when it connects to a cluster's nodes directly. */
  broker: Proxy | undefined;
  database: Proxy;
  url: string;
}

const target = (url: string, defaultPort: number) => {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || defaultPort) };
};

/**
 * The distributed platform as separate processes, each connected to RabbitMQ and PostgreSQL
 * through proxies of its own, so a fault test can kill -9 a process or cut its connections
 * while the shared servers stay up for everyone else.
 */
export async function startCluster(options: {
  /** One broker (each process reaches it through a proxy of its own) or a cluster's nodes, comma-separated (reached directly). */
  amqpUrl: string;
  inventoryInstances: number;
  env?: Record<string, string>;
}) {
  const viaOwnProxy = splitUrlList(options.amqpUrl).length === 1;
  const databases = { inventory: await createTestDatabase('fault_inventory'), orders: await createTestDatabase('fault_orders') };
  const members: Member[] = [];

  const start = async (
    name: string,
    entry: Runnable,
    db: TestDatabase,
    proxies?: { broker: Proxy | undefined; database: Proxy },
    env: Record<string, string> = {},
  ) => {
    const broker = proxies ? proxies.broker : viaOwnProxy ? await startTcpProxy(target(options.amqpUrl, 5672)) : undefined;
    const database = proxies?.database ?? (await startTcpProxy(target(testServers.postgresAdminUrl, 5432)));
    const process = await startServiceProcess(entry, {
      DATABASE_URL: viaProxy(db.url, database.port),
      AMQP_URL: broker ? viaProxy(options.amqpUrl, broker.port) : options.amqpUrl,
      PORT: '0',
      HOST: '127.0.0.1',
      CONSUMER_PREFETCH: '50',
      CONSUMER_BATCH_SIZE: '20',
      OUTBOX_POLL_MS: '100',
      BREAKER_OPEN_MS: '300',
      BREAKER_MAX_OPEN_MS: '2000',
      AUTH_DISABLED: 'true',
      ...env,
      ...options.env,
    });
    const member = { name, process, broker, database, url: `http://127.0.0.1:${process.port}/graphql` };
    members.push(member);
    return member;
  };

  // The first instance has the highest consumer priority, so it is the one taking the deliveries
  // (the others take what overflows its prefetch): a test killing inventory[0] kills it mid-batch.
  const priority = (i: number) => ({ CONSUMER_PRIORITY: String(options.inventoryInstances - i) });
  const inventory: Member[] = [];
  for (let i = 0; i < options.inventoryInstances; i += 1) {
    inventory.push(await start(`inventory-${i + 1}`, 'inventory', databases.inventory, undefined, priority(i)));
  }
  let orders = await start('orders', 'orders', databases.orders);

  return {
    inventory,
    /** The services' databases (reached directly), for a test to read what was committed. */
    databases,
    get orders() {
      return orders;
    },
    /** An inventory instance that is running, to ask its API. */
    liveInventory(): Member {
      const live = inventory.find((m) => m.process.child.exitCode === null && m.process.child.signalCode === null);
      if (!live) throw new Error('no inventory instance is running');
      return live;
    },
    /** Starts inventory instance `i` again behind the same proxies (after a kill or a stop). */
    async restartInventory(i: number) {
      const old = inventory[i] as Member;
      members.splice(members.indexOf(old), 1);
      inventory[i] = await start(old.name, 'inventory', databases.inventory, old, priority(i));
      return inventory[i];
    },
    /** Starts the Order Service again behind the same proxies (after a kill). */
    async restartOrders() {
      members.splice(members.indexOf(orders), 1);
      orders = await start('orders', 'orders', databases.orders, orders);
      return orders;
    },
    cutBroker: () => members.forEach((m) => m.broker?.cut()),
    restoreBroker: () => members.forEach((m) => m.broker?.restore()),
    cutDatabase: () => members.forEach((m) => m.database.cut()),
    restoreDatabase: () => members.forEach((m) => m.database.restore()),
    /** Every process's log, for a failing test's message. */
    logs: () => members.map((m) => `--- ${m.name}\n${m.process.output().slice(-4_000)}`).join('\n'),
    async close() {
      await Promise.all(members.map((m) => m.process.stop('SIGKILL')));
      for (const m of members) {
        await m.broker?.close();
        await m.database.close();
      }
      await databases.inventory.drop();
      await databases.orders.drop();
    },
  };
}

export type Cluster = Awaited<ReturnType<typeof startCluster>>;

/**
 * A catalog with a few hot products far below demand and the rest plentiful. With `locations`
 * (MAIN first; the others are created, each after the one before it in priority) each hot
 * product's stock is spread over all of them, and of the rest every other product is too while
 * the others live at one location each, so orders are split across locations and a hot
 * product's stock runs out at one location after another. `hotBackorderLimit` lets that many
 * units of each hot product be promised beyond its stock.
 */
export async function createCatalog(
  inventoryUrl: string,
  options: {
    products: number;
    hot: number;
    hotStock: number;
    stock: number;
    locations?: readonly string[];
    hotBackorderLimit?: number;
  },
) {
  const gql = graphqlClient(inventoryUrl);
  const locations = options.locations ?? [MAIN_LOCATION];
  for (const [i, code] of locations.entries()) {
    if (code === MAIN_LOCATION) continue;
    await gql.data(`mutation { createStockLocation(input: {code: "${code}", name: "${code}", priority: ${100 + 10 * i}}) { id } }`);
  }
  const ids: number[] = [];
  for (let i = 0; i < options.products; i += 1) {
    const hot = i < options.hot;
    const units = hot ? options.hotStock : options.stock;
    const spread = stockAt(locations, i, units, hot || i % 2 === 0);
    const at = new Map(spread);
    const backorderLimit = hot ? (options.hotBackorderLimit ?? 0) : 0;
    const data = await gql.data<{ createProduct: { id: string } }>(
      `mutation { createProduct(input: {sku: "P-${i}", name: "Product ${i}", initialStock: ${at.get(MAIN_LOCATION) ?? 0}, backorderLimit: ${backorderLimit}}) { id } }`,
    );
    for (const [code, quantity] of spread) {
      if (code === MAIN_LOCATION || quantity === 0) continue;
      await gql.data(`mutation { restock(productId: "${data.createProduct.id}", quantity: ${quantity}, locationCode: "${code}") { id } }`);
    }
    ids.push(Number(data.createProduct.id));
  }
  return { all: ids, hot: ids.slice(0, options.hot) };
}

/**
 * Places orders through the Order Service's GraphQL API, `concurrency` at a time. Half the orders
 * ask for a hot product. Failed requests (an outage) are counted, not retried.
 */
export async function placeOrders(
  ordersUrl: string,
  catalog: { all: number[]; hot: number[] },
  options: { count: number; concurrency: number; onPlaced?: (placed: number) => void },
) {
  const gql = graphqlClient(ordersUrl);
  const accepted: string[] = [];
  let failed = 0;
  let next = 0;
  const pick = (list: number[]) => list[randomInt(list.length)] as number;
  const worker = async () => {
    while (next < options.count) {
      const n = (next += 1);
      const lines = Array.from({ length: randomInt(1, 4) }, () => ({ productId: String(pick(catalog.all)), quantity: randomInt(1, 4) }));
      if (n % 2 === 0 && catalog.hot.length > 0) lines.push({ productId: String(pick(catalog.hot)), quantity: 1 });
      try {
        const res = await gql.request<{ createOrder: { id: string } }>(
          'mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }',
          {
            input: { customerId: `customer-${n % 17}`, items: lines },
          },
        );
        if (res.data?.createOrder) accepted.push(res.data.createOrder.id);
        else failed += 1;
      } catch {
        failed += 1;
      }
      options.onPlaced?.(accepted.length + failed);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return { accepted, failed };
}
