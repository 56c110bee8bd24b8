import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { httpPipe } from './http-pipe.ts';

describe('httpPipe', () => {
  const servers: ReturnType<typeof createServer>[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  /** A server that answers every POST with its body, counting connections and the bodies each one carried. */
  const echo = async () => {
    const bodies: string[][] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        bodies[(req.socket as unknown as { index: number }).index]?.push(body);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
      });
    });
    server.on('connection', (socket) => {
      (socket as unknown as { index: number }).index = bodies.length;
      bodies.push([]);
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`, bodies };
  };

  it('opens every connection with one answered request before anything is posted, and posts over those same connections', async () => {
    const { url, bodies } = await echo();
    const pipe = httpPipe(url, 5);
    await pipe.open('{"open":true}');
    expect(bodies).toEqual(Array.from({ length: 5 }, () => ['{"open":true}']));

    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => pipe.post(`{"n":${i}}`)));
    expect(answers.map((a) => a.body)).toEqual(Array.from({ length: 10 }, (_, i) => `{"n":${i}}`));
    // No connection more: the ten went over the five already open.
    expect(bodies).toHaveLength(5);
    expect(bodies.flat()).toHaveLength(15);
    pipe.close();
  });

  it('sends the next request on a new connection once one is reset, and the reset one closing later fails nothing', async () => {
    let requests = 0;
    const server = createServer((req, res) => {
      requests += 1;
      // The first is cut with a reset: the client sees an error, then the socket's close a turn later.
      if (requests === 1) return req.socket.resetAndDestroy();
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 2 }).end('{}');
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const pipe = httpPipe(`http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`, 1);
    // Sent again as soon as the first fails, as the load's workers do: before the reset socket's close.
    const again = await pipe.post('{}').then(
      () => 'answered',
      () => pipe.post('{}'),
    );
    expect(again).toEqual({ status: 200, body: '{}' });
    // The slot is idle once, not twice: two more requests go one after the other on it.
    expect(await Promise.all([pipe.post('{}'), pipe.post('{}')])).toEqual([
      { status: 200, body: '{}' },
      { status: 200, body: '{}' },
    ]);
    pipe.close();
  });

  it('fails every request still waiting when it is closed, on a connection or for one, and any posted after', async () => {
    // A server that never answers.
    const server = createServer((req) => req.resume());
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const pipe = httpPipe(`http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`, 1);
    const sent = pipe.post('{}');
    const queued = pipe.post('{}');
    pipe.close();
    await expect(sent).rejects.toThrow(/closed/);
    await expect(queued).rejects.toThrow(/closed/);
    await expect(pipe.post('{}')).rejects.toThrow(/closed/);
  });

  it('refuses to open when the server does not answer 200', async () => {
    const server = createServer((req, res) => {
      req.resume();
      res.writeHead(401, { 'content-type': 'application/json', 'content-length': 2 }).end('{}');
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const pipe = httpPipe(`http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`, 2);
    await expect(pipe.open('{}')).rejects.toThrow(/HTTP 401/);
    pipe.close();
  });
});
