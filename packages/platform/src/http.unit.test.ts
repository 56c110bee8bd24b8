import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createDrainingServer, DRAINING_HEADER, startHttpServer, type RunningHttpServer } from './http.ts';

describe('startHttpServer', () => {
  let server: RunningHttpServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });
  const start = async (asyncApi?: object) => {
    server = await startHttpServer({
      port: 0,
      host: '127.0.0.1',
      checks: [],
      asyncApi,
      handler: (_req, res) => {
        res.writeHead(404);
        res.end();
      },
    });
    return `http://127.0.0.1:${server.port}`;
  };

  it('serves the AsyncAPI document it is given at /asyncapi.json', async () => {
    const document = { asyncapi: '3.0.0', info: { title: 'events', version: '1' } };
    const res = await fetch(`${await start(document)}/asyncapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual(document);
  });

  it('leaves /asyncapi.json to the handler when it has none', async () => {
    expect((await fetch(`${await start()}/asyncapi.json`)).status).toBe(404);
  });
});

describe('a draining server', () => {
  it('refuses a request that comes in once it drains with 503 and DRAINING_HEADER, while it answers the one under way', async () => {
    let release: (() => void) | undefined;
    const draining = createDrainingServer((req, res) => {
      req.resume();
      release = () => res.writeHead(200, { 'content-length': '2' }).end('ok');
    });
    await new Promise<void>((resolve) => draining.server.listen(0, '127.0.0.1', resolve));
    const port = (draining.server.address() as AddressInfo).port;
    const open = (): { socket: Socket; received: () => string } => {
      const socket = connect(port, '127.0.0.1');
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
      return { socket, received: () => received };
    };
    // One request under way, which keeps the server draining; another begun (its headers half sent).
    const held = open();
    held.socket.write('GET /a HTTP/1.1\r\nhost: x\r\n\r\n');
    await vi.waitFor(() => expect(release).toBeDefined());
    const late = open();
    late.socket.write('GET /b HTTP/1.1\r\nhost: x\r\n');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closed = draining.close();
    late.socket.write('\r\n');
    await vi.waitFor(() => expect(late.received()).toMatch(/shutting down/));
    expect(late.received()).toMatch(/^HTTP\/1\.1 503 /);
    expect(late.received()).toMatch(new RegExp(`\r\n${DRAINING_HEADER}: true\r\n`, 'i'));
    release?.();
    await vi.waitFor(() => expect(held.received()).toMatch(/^HTTP\/1\.1 200 /));
    held.socket.destroy();
    late.socket.destroy();
    await closed;
  });
});
