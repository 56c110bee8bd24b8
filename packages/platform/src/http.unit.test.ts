import { afterEach, describe, expect, it } from 'vitest';
import { startHttpServer, type RunningHttpServer } from './http.ts';

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
