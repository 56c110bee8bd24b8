/**
 * Who may change state through the dashboard server: with authentication off only its own page
 * (no other site's page, through a visitor's browser), with it on what the token allows. Plain
 * HTTP requests that carry the headers a browser would send; the embedded platform behind.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH_NOTICE_HEADER } from '@stockflow/graphql';
import { signToken } from '@stockflow/client';
import { startPlatform, type RunningPlatform } from '../src/platform.ts';
import { embeddedEnv } from './embedded.ts';

const SECRET = 'a-dashboard-access-test-secret-of-32-characters';
const EVIL = { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' };
const JSON_BODY = { 'content-type': 'application/json' };
/** As small as a rehearsal gets, so the test does not load the machine. */
const REHEARSAL = JSON.stringify({ orders: 1, rate: 1 });

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

const send = (port: number, method: string, urlPath: string, headers: Record<string, string> = {}, body?: string) =>
  new Promise<Answer>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path: urlPath, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });

describe.each([
  { auth: 'off', env: {} },
  { auth: 'on', env: { AUTH_JWT_SECRET: SECRET } },
])('dashboard server, authentication $auth', ({ auth, env }) => {
  let platform: RunningPlatform;
  let embedded: Awaited<ReturnType<typeof embeddedEnv>>;
  let port: number;
  /** The headers the dashboard's own page sends from Chromium. */
  let own: Record<string, string>;

  beforeAll(async () => {
    embedded = await embeddedEnv('dashboard-access');
    platform = await startPlatform({ ...embedded.env, ...env });
    port = platform.dashboard.port;
    own = { origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin' };
  });
  afterAll(async () => {
    await platform?.close();
    await embedded.remove();
  });

  /** Starts a rehearsal with these headers and, once it is accepted, waits for it to end so nothing runs on at close. */
  const rehearse = async (headers: Record<string, string>) => {
    const answer = await send(port, 'POST', '/api/rehearsal', headers, REHEARSAL);
    if (answer.status === 202) {
      await expect
        .poll(async () => (JSON.parse((await send(port, 'GET', '/api/rehearsal')).body) as { running: boolean }).running, {
          timeout: 60_000,
          interval: 250,
        })
        .toBe(false);
    }
    return answer;
  };
  type StatusBody = Record<string, unknown> & { services: Record<string, unknown>[]; gateway: Record<string, unknown> };
  /** The status summary as a request with these headers gets it. */
  const statusFor = async (headers: Record<string, string> = {}) => {
    const answer = await send(port, 'GET', '/api/status', headers);
    expect(answer.status, answer.body).toBe(200);
    return JSON.parse(answer.body) as StatusBody;
  };
  /** Everything the summary tells an operator: each part's checks, the outbox, dead letters, decisions. */
  const expectDetails = (body: StatusBody) => {
    expect(Object.keys(body).sort()).toEqual([
      'at',
      'auth',
      'deadLetters',
      'decisions',
      'gateway',
      'outbox',
      'queues',
      'refundQueue',
      'services',
    ]);
    for (const part of [...body.services, body.gateway]) expect(part).toHaveProperty('checks');
  };

  const productsNamed = async (sku: string) =>
    (await platform.inventory.db.query<{ n: number }>('SELECT count(*)::int AS n FROM products WHERE sku = $1', [sku])).rows[0]?.n;

  it('answers no other site with CORS headers, through the proxied graph', async () => {
    const preflight = await send(port, 'OPTIONS', '/api/graphql', {
      ...EVIL,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type, authorization',
    });
    expect(Object.keys(preflight.headers).filter((h) => h.startsWith('access-control-'))).toEqual([]);
    const answer = await send(port, 'POST', '/api/graphql', { ...EVIL, ...JSON_BODY }, '{"query":"{ __typename }"}');
    expect(answer.headers['access-control-allow-origin']).toBeUndefined();
  });

  it("passes its page's GraphQL on to the gateway: one request reads both services, orders joined to their products", async () => {
    const admin: Record<string, string> =
      auth === 'on' ? { authorization: `Bearer ${await signToken(SECRET, { sub: 'ops', role: 'admin' })}` } : {};
    const ask = async (query: string, variables: Record<string, unknown> = {}) => {
      const answer = await send(port, 'POST', '/api/graphql', { ...own, ...JSON_BODY, ...admin }, JSON.stringify({ query, variables }));
      expect(answer.status, answer.body).toBe(200);
      return (JSON.parse(answer.body) as { data: Record<string, unknown> }).data;
    };
    const created = (await ask('mutation { createProduct(input: { sku: "VIA-GW-1", name: "Gateway lamp", initialStock: 3 }) { id } }')) as {
      createProduct: { id: string };
    };
    const productId = created.createProduct.id;
    const placed = (await ask('mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }', {
      input: { customerId: 'walk-in', items: [{ productId, quantity: 1 }] },
    })) as { createOrder: { id: string } };
    const both = await ask('query($id: ID!, $p: ID!) { product(id: $p) { sku } order(id: $id) { items { quantity product { name } } } }', {
      id: placed.createOrder.id,
      p: productId,
    });
    expect(both).toEqual({ product: { sku: 'VIA-GW-1' }, order: { items: [{ quantity: 1, product: { name: 'Gateway lamp' } }] } });
    // A GET's operation is in its query string, passed on with it.
    const viaGet = await send(port, 'GET', `/api/graphql?query=${encodeURIComponent('{ product(id: "' + productId + '") { sku } }')}`, {
      ...own,
      ...admin,
      accept: 'application/json',
    });
    expect(JSON.parse(viaGet.body)).toEqual({ data: { product: { sku: 'VIA-GW-1' } } });
    // The per-service paths it had before the gateway are gone.
    for (const old of ['/api/orders/graphql', '/api/inventory/graphql'])
      expect((await send(port, 'POST', old, { ...own, ...JSON_BODY, ...admin }, '{"query":"{ __typename }"}')).status).toBe(404);
  });

  it('lets no cross-site form post change stock through the proxy', async () => {
    const form = new URLSearchParams({
      query: 'mutation { createProduct(input: { sku: "CSRF-1", name: "forged", initialStock: 5 }) { id } }',
    });
    const answer = await send(
      port,
      'POST',
      '/api/graphql',
      { ...EVIL, 'content-type': 'application/x-www-form-urlencoded' },
      form.toString(),
    );
    // With authentication on the service refuses it for want of a token; with it off nothing else would.
    if (auth === 'off') expect(answer.status).toBe(403);
    expect(await productsNamed('CSRF-1')).toBe(0);
  });

  /** A script on a page of evil.example, whose name now resolves to 127.0.0.1: the browser calls that same-origin. */
  const rebound = () => {
    const host = `evil.example:${port}`;
    return { host, origin: `http://${host}`, 'sec-fetch-site': 'same-origin' };
  };
  const typename = (headers: Record<string, string>) =>
    send(port, 'POST', '/api/graphql', { ...headers, ...JSON_BODY }, '{"query":"{ __typename }"}');

  if (auth === 'off') {
    it('answers no request addressed to another name (DNS rebinding), 421 on every path', async () => {
      const mutation = JSON.stringify({
        query: 'mutation { createProduct(input: { sku: "REBOUND-1", name: "forged", initialStock: 5 }) { id } }',
      });
      const answers = [
        await send(port, 'GET', '/', rebound()),
        await send(port, 'GET', '/api/status', rebound()),
        await send(port, 'POST', '/api/graphql', { ...rebound(), ...JSON_BODY }, mutation),
        await rehearse({ ...rebound(), ...JSON_BODY }),
        // The embedded services themselves, reached directly.
        await send(platform.inventory.port, 'POST', '/graphql', { ...rebound(), ...JSON_BODY }, mutation),
        await send(platform.orders.port, 'GET', '/ready', rebound()),
      ];
      for (const answer of answers) {
        expect(answer.status).toBe(421);
        expect(answer.body).toMatch(/only requests addressed to localhost or an IP address/);
      }
      expect(await productsNamed('REBOUND-1')).toBe(0);
    });

    it('shows anyone the whole status, and marks the answers it passes on as given without authentication', async () => {
      const body = await statusFor();
      expect(body.auth).toBe('disabled');
      expectDetails(body);
      const answer = await typename({ ...own, authorization: 'Bearer garbage' });
      expect(answer.status).toBe(200);
      expect(answer.headers[AUTH_NOTICE_HEADER]).toBe('disabled');
    });

    it('answers its own page at localhost and at 127.0.0.1, and passes its API calls on to the gateway', async () => {
      for (const host of [`localhost:${port}`, `127.0.0.1:${port}`]) {
        const answer = await typename({ host, origin: `http://${host}`, 'sec-fetch-site': 'same-origin' });
        expect(answer.status, host).toBe(200);
        expect(JSON.parse(answer.body), host).toEqual({ data: { __typename: 'Query' } });
      }
    });

    it('refuses a rehearsal asked for by another site’s page', async () => {
      expect((await rehearse({ ...EVIL, ...JSON_BODY })).status).toBe(403);
      // A browser without Fetch Metadata still sends Origin.
      expect((await rehearse({ origin: EVIL.origin, ...JSON_BODY })).status).toBe(403);
      expect((await rehearse({ origin: 'null', ...JSON_BODY })).status).toBe(403);
    });

    it('refuses a rehearsal whose body is not JSON, which is all an HTML form can send', async () => {
      expect((await rehearse({ 'content-type': 'application/x-www-form-urlencoded' })).status).toBe(415);
      expect((await rehearse({ 'content-type': 'text/plain' })).status).toBe(415);
      expect((await rehearse({ ...own, 'content-type': 'multipart/form-data; boundary=x' })).status).toBe(415);
    });

    it('starts a rehearsal for its own page', async () => {
      expect((await rehearse({ ...own, ...JSON_BODY })).status).toBe(202);
      expect((JSON.parse((await send(port, 'GET', '/api/rehearsal')).body) as { report: { accepted: number } }).report.accepted).toBe(1);
    });
  } else {
    it('answers a request addressed to any name: what it may do is the token’s', async () => {
      const admin = await signToken(SECRET, { sub: 'ops', role: 'admin' });
      const answer = await typename({ ...rebound(), authorization: `Bearer ${admin}` });
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toEqual({ data: { __typename: 'Query' } });
    });

    it('shows whether each part is ready to anyone, and the rest of the status to an admin only', async () => {
      const readiness = (body: StatusBody) => {
        expect(Object.keys(body).sort()).toEqual(['at', 'auth', 'gateway', 'services']);
        expect(body.auth).toBe('jwt');
        expect(body.services.map((s) => Object.keys(s).sort())).toEqual([
          ['name', 'ready'],
          ['name', 'ready'],
        ]);
        expect(Object.keys(body.gateway)).toEqual(['ready']);
      };
      readiness(await statusFor());
      for (const [sub, role] of [
        ['alice', 'customer'],
        ['psp-webhook', 'payments'],
      ] as const) {
        readiness(await statusFor({ authorization: `Bearer ${await signToken(SECRET, { sub, role })}` }));
      }
      expectDetails(await statusFor({ authorization: `Bearer ${await signToken(SECRET, { sub: 'ops', role: 'admin' })}` }));
      const forged = await send(port, 'GET', '/api/status', { authorization: 'Bearer garbage' });
      expect(forged.status).toBe(401);
      expect(JSON.parse(forged.body)).toEqual({ error: expect.stringMatching(/the token is not valid/) as unknown });
      // Nor are the answers it passes on marked: tokens are checked.
      const admin = await signToken(SECRET, { sub: 'ops', role: 'admin' });
      expect((await typename({ ...own, authorization: `Bearer ${admin}` })).headers[AUTH_NOTICE_HEADER]).toBeUndefined();
    });

    it('asks for a token to start a rehearsal, and an admin’s', async () => {
      expect((await rehearse({ ...own, ...JSON_BODY })).status).toBe(401);
      const customer = await signToken(SECRET, { sub: 'alice', role: 'customer' });
      expect((await rehearse({ ...own, ...JSON_BODY, authorization: `Bearer ${customer}` })).status).toBe(403);
      const payments = await signToken(SECRET, { sub: 'psp-webhook', role: 'payments' });
      expect((await rehearse({ ...own, ...JSON_BODY, authorization: `Bearer ${payments}` })).status).toBe(403);
      const admin = await signToken(SECRET, { sub: 'ops', role: 'admin' });
      expect((await rehearse({ ...own, ...JSON_BODY, authorization: `Bearer ${admin}` })).status).toBe(202);
      expect((JSON.parse((await send(port, 'GET', '/api/rehearsal')).body) as { report: { accepted: number } }).report.accepted).toBe(1);
    });
  }
});
