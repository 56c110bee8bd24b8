/**
 * The gateway as its container runs it (the built bundle, a process of its own) stopped with
 * SIGTERM while it still waits on a service: what it has accepted is answered, then it exits 0.
 * The services are stubs that answer slowly, so the request is held inside the gateway.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startServiceProcess, type ServiceProcess } from '@stockflow/testing';

const SHUTDOWN_TIMEOUT_MS = 5_000;
/** How long the stub service takes to answer: the gateway is stopped meanwhile. */
const ANSWER_AFTER_MS = 1_500;

describe('the gateway stopped with SIGTERM while a request waits on a service', () => {
  let stub: Server;
  let stubUrl: string;
  let gateway: ServiceProcess | undefined;
  /** Resolves when the stub service has a GraphQL request in hand. */
  let received: Promise<void>;
  let onReceived: () => void = () => undefined;

  beforeAll(async () => {
    stub = createServer((req: IncomingMessage, res) => {
      if (req.url === '/health') return res.writeHead(200).end('{"status":"ok"}');
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        onReceived();
        // cancelOrder returns an order; `order` finds none.
        const data = /cancelOrder/.test(body) ? { cancelOrder: { __typename: 'Order', id: 'ORD-1' } } : { order: null };
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ data }));
        }, ANSWER_AFTER_MS);
      });
    });
    await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
    stubUrl = `http://127.0.0.1:${(stub.address() as AddressInfo).port}/graphql`;
  });
  afterEach(async () => {
    await gateway?.stop('SIGKILL');
    gateway = undefined;
  });
  afterAll(async () => {
    await new Promise((resolve) => stub?.close(resolve));
  });

  const start = async () => {
    received = new Promise<void>((resolve) => (onReceived = resolve));
    gateway = await startServiceProcess('gateway', {
      PORT: '0',
      HOST: '127.0.0.1',
      ORDERS_URL: stubUrl,
      INVENTORY_URL: stubUrl,
      AUTH_DISABLED: 'true',
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
    });
    return gateway;
  };

  it('answers a query it holds, then exits 0', async () => {
    const running = await start();
    const answer = fetch(`http://127.0.0.1:${running.port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ order(id: "ORD-1") { id } }' }),
    }).then(async (res) => ({ status: res.status, body: (await res.json()) as unknown }));
    await received;
    const exited = running.stop('SIGTERM');
    expect(await answer).toEqual({ status: 200, body: { data: { order: null } } });
    expect(await exited, running.output()).toBe(0);
  });

  it('answers a mutation sent over SSE (not a subscription: its stream ends with its answer), then exits 0', async () => {
    const running = await start();
    const answer = fetch(`http://127.0.0.1:${running.port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: 'mutation { cancelOrder(id: "ORD-1") { id } }' }),
    }).then(async (res) => ({ status: res.status, text: await res.text() }));
    await received;
    const exited = running.stop('SIGTERM');
    const { status, text } = await answer;
    expect(status).toBe(200);
    expect(text).toContain('"data":{"cancelOrder":{"id":"ORD-1"}}');
    expect(await exited, running.output()).toBe(0);
  });
});
