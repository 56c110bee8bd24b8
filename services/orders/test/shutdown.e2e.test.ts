import { connect, type Socket } from 'node:net';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { EXCHANGES, ROUTING_KEYS } from '@stockflow/contracts';
import {
  createTestDatabase,
  eventually,
  rawAmqp,
  sseSubscribe,
  startServiceProcess,
  startTcpProxy,
  testServers,
  viaProxy,
  type ServiceProcess,
  type TestDatabase,
} from '@stockflow/testing';

const servicesUnavailable = inject('servicesUnavailable');
const IN_FLIGHT = 12;

type Outcome = { status: number; id?: string; error?: string };

/**
 * The Order Service as its own process, stopped with SIGTERM while createOrder calls wait on a
 * lock the test holds on `orders`: the calls are accepted and under way, their inserts not done.
 */
describe.skipIf(servicesUnavailable)('Order Service stopped with SIGTERM', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let sql: pg.Client;
  let lock: pg.Client;
  let orders: ServiceProcess | undefined;
  let proxy: Awaited<ReturnType<typeof startTcpProxy>> | undefined;

  beforeEach(async () => {
    db = await createTestDatabase('orders_shutdown');
  });
  afterEach(async () => {
    await orders?.stop('SIGKILL');
    await proxy?.close();
    proxy = undefined;
    await lock?.end().catch(() => undefined);
    await sql?.end().catch(() => undefined);
    await db.drop();
  });

  const start = async (shutdownTimeoutMs: number, databaseUrl = db.url) => {
    orders = await startServiceProcess('orders', {
      DATABASE_URL: databaseUrl,
      AMQP_URL: inject('amqpUrl'),
      PORT: '0',
      HOST: '127.0.0.1',
      AUTH_DISABLED: 'true',
      CREATE_ORDER_RATE_LIMIT: '0',
      SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs),
    });
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    lock = new pg.Client({ connectionString: db.url });
    await lock.connect();
    return orders;
  };
  const createOrder = (port: number, customerId: string): Promise<Outcome> =>
    fetch(`http://127.0.0.1:${port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: 'mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }',
        variables: { input: { customerId, items: [{ productId: '1', quantity: 1 }] } },
      }),
    }).then(
      async (res) => ({
        status: res.status,
        id: ((await res.json()) as { data?: { createOrder?: { id: string } } }).data?.createOrder?.id,
      }),
      (error: unknown) => ({ status: 0, error: String((error as { cause?: { code?: string } }).cause?.code ?? error) }),
    );
  /** createOrder over Server-Sent Events (queries and mutations are served so too): one `next` event, then `complete`. */
  const createOrderOverSse = (port: number, customerId: string): Promise<Outcome> =>
    fetch(`http://127.0.0.1:${port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({
        query: 'mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }',
        variables: { input: { customerId, items: [{ productId: '1', quantity: 1 }] } },
      }),
    }).then(
      async (res) => {
        const data = /^data: (\{.*\})$/m.exec(await res.text())?.[1];
        return {
          status: res.status,
          id: data ? (JSON.parse(data) as { data?: { createOrder?: { id: string } } }).data?.createOrder?.id : undefined,
        };
      },
      (error: unknown) => ({ status: 0, error: String((error as { cause?: { code?: string } }).cause?.code ?? error) }),
    );
  /** Holds every insert into `orders` until the lock's transaction ends. */
  const holdInserts = async () => {
    await lock.query('BEGIN');
    await lock.query('LOCK TABLE orders IN SHARE MODE');
  };
  const waitingOnLock = async () =>
    (await sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND relation = 'orders'::regclass`)).rows[0]
      ?.n ?? 0;
  /**
   * The calls share a transaction or two (the Order Service batches concurrent inserts): once one
   * waits on the lock, the others have long been read and wait behind it.
   */
  const underWay = async () => {
    await eventually(waitingOnLock, (n) => n > 0);
    await new Promise((resolve) => setTimeout(resolve, 500));
  };
  const stored = async () => (await sql.query<{ id: string }>('SELECT id FROM orders')).rows;
  const write = (socket: Socket, text: string) =>
    new Promise<void>((resolve, reject) => socket.write(text, (error) => (error ? reject(error) : resolve())));
  /** Resolves once the process no longer accepts connections. */
  const stoppedListening = (port: number) =>
    eventually(
      () =>
        fetch(`http://127.0.0.1:${port}/health`).then(
          () => 'answered',
          (error: unknown) => String((error as { cause?: { code?: string } }).cause?.code),
        ),
      (outcome) => outcome === 'ECONNREFUSED',
      30_000,
      20,
    );

  it('answers the createOrder calls under way when SIGTERM comes, publishes their events, and refuses later calls', async () => {
    const service = await start(30_000);
    const { port } = service;
    const output = () => service.output();
    const amqp = await rawAmqp(inject('amqpUrl'));
    const created = await amqp.listen(EXCHANGES.orders, ROUTING_KEYS.orderCreated);
    // A subscriber's stream never ends by itself: the shutdown closes it rather than wait for it.
    const first = await createOrder(port, 'subscriber');
    const subscription = await sseSubscribe(
      `http://127.0.0.1:${port}/graphql`,
      'subscription($id: ID!) { orderStatusChanged(id: $id) { id } }',
      {
        id: first.id,
      },
    );
    await holdInserts();
    // A mutation over SSE answers on an event stream too, yet is no subscription: it is answered.
    const overSse = createOrderOverSse(port, 'over-sse');
    await eventually(waitingOnLock, (n) => n > 0);
    const early = Array.from({ length: IN_FLIGHT }, (_, i) => createOrder(port, `early-${i}`));
    await underWay();

    const exited = service.stop('SIGTERM');
    await stoppedListening(port);
    const late = await Promise.all(Array.from({ length: 5 }, (_, i) => createOrder(port, `late-${i}`)));
    await lock.query('COMMIT');

    const answered = [await overSse, ...(await Promise.all(early))];
    expect(await exited, output()).toBe(0);
    expect(output()).not.toMatch(/shutdown timeout was cut/);
    subscription.close();
    // Each call under way was answered with its order: none was cut.
    expect(answered.map((a) => a.status)).toEqual(Array(IN_FLIGHT + 1).fill(200));
    const ids = answered.map((a) => a.id);
    expect(
      ids.every((id) => typeof id === 'string'),
      JSON.stringify(answered),
    ).toBe(true);
    // Calls after SIGTERM were refused, before anything was written.
    for (const outcome of late) expect(outcome.status === 503 || outcome.error === 'ECONNREFUSED', JSON.stringify(outcome)).toBe(true);
    const rows = await stored();
    expect(rows.map((r) => r.id).sort()).toEqual([first.id, ...ids].sort());
    // Their OrderCreated events were published before the exit: the outbox is empty.
    expect((await sql.query('SELECT id FROM outbox')).rows).toEqual([]);
    const published = (await created.waitFor(IN_FLIGHT + 2)).map((m) => (m.json as { order_id: string }).order_id);
    expect(published.sort()).toEqual([first.id, ...ids].sort());
    await amqp.close();
  });

  it('exits within twice SHUTDOWN_TIMEOUT_MS, with code 1, when the database stops answering, having written nothing it did not answer', async () => {
    const timeoutMs = 1_000;
    const service = await start(timeoutMs);
    const { port } = service;
    const output = () => service.output();
    await holdInserts();
    const early = Array.from({ length: IN_FLIGHT }, (_, i) => createOrder(port, `early-${i}`));
    await underWay();

    const sent = Date.now();
    const exited = service.stop('SIGTERM');
    // A generous margin: what is checked is that it exits at all while the database hangs.
    const code = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 2 * timeoutMs + 15_000))]);
    expect(code, output()).toBe(1);
    expect(Date.now() - sent).toBeGreaterThanOrEqual(timeoutMs);
    expect(output()).toMatch(/shutdown did not finish in time/);
    // The calls were cut, not answered, and their transactions died with the process.
    const answered = await Promise.all(early);
    expect(answered.filter((a) => a.status === 200)).toEqual([]);
    await lock.query('COMMIT');
    expect(await stored()).toEqual([]);
  });
  it('answers 503 with Connection: close, having done nothing, to a request that arrives on an open connection after SIGTERM', async () => {
    const service = await start(30_000);
    const { port } = service;
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
    const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    // A first request answered: the connection is kept alive.
    socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await eventually(
      () => Promise.resolve(received),
      (text) => text.includes('"ok"'),
    );
    expect(received).toMatch(/^HTTP\/1\.1 200/);
    expect(received).toMatch(/\r\nconnection: keep-alive\r\n/i);
    // The next one has begun (a connection in the middle of a request is not idle, so the shutdown
    // does not close it) and is complete only after SIGTERM.
    received = '';
    const body = JSON.stringify({
      query: 'mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }',
      variables: { input: { customerId: 'late', items: [{ productId: '1', quantity: 1 }] } },
    });
    await write(socket, 'POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n');

    const exited = service.stop('SIGTERM');
    await stoppedListening(port);
    await write(socket, `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    await ended;
    expect(received).toMatch(/^HTTP\/1\.1 503/);
    expect(received).toMatch(/\r\nconnection: close\r\n/i);
    expect(await exited, service.output()).toBe(0);
    expect(await stored()).toEqual([]);
  });

  it('stops listening at once when the database stops answering, and exits within twice SHUTDOWN_TIMEOUT_MS with code 1', async () => {
    const postgres = new URL(testServers.postgresAdminUrl);
    proxy = await startTcpProxy({ host: postgres.hostname, port: Number(postgres.port || 5432) });
    // Long enough that the process is certainly still running while it is checked that it no
    // longer listens.
    const timeoutMs = 5_000;
    const service = await start(timeoutMs, viaProxy(db.url, proxy.port));
    const { port } = service;
    const running = () => service.child.exitCode === null && service.child.signalCode === null;
    // Every connection to the database is left hanging: its LISTEN connection can no longer end.
    proxy.blackhole();

    const exited = service.stop('SIGTERM');
    await stoppedListening(port);
    expect(running(), service.output()).toBe(true);
    // A generous margin: what is checked is that it exits at all while the database hangs.
    const code = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 2 * timeoutMs + 15_000))]);
    expect(code, service.output()).toBe(1);
    expect(service.output()).toMatch(/shutdown did not finish in time/);
  });
});
