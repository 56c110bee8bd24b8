import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXCHANGES, ROUTING_KEYS } from '@stockflow/contracts';
import { MAX_REQUEST_BODY_BYTES } from '@stockflow/graphql';
import { signToken } from '@stockflow/client';
import { graphqlClient } from '@stockflow/testing';
import { servicesUnavailable, startInventory, type InventoryHarness } from './harness.ts';

const SECRET = 'a-test-secret-that-is-at-least-32-characters-long';
const urlOf = (h: InventoryHarness) => `http://127.0.0.1:${h.service.port}/graphql`;

/** Every page of products, and every product's ledger, as deep as `$n` asks. */
const LEDGER = 'query($n: Int) { products(first: $n) { nodes { id movements(first: $n) { nodes { id quantity availableAfter } } } } }';

describe.skipIf(servicesUnavailable)('the HTTP edge of /graphql (real Inventory Service)', () => {
  // Authentication on, as in production: the cost limit is what stops a customer's token.
  let secured: InventoryHarness;
  // Authentication off, as the embedded mode runs: only the edge stands between a web page and a mutation.
  let open: InventoryHarness;
  let customer: string;

  beforeAll(async () => {
    secured = await startInventory({ AUTH_DISABLED: 'false', AUTH_JWT_SECRET: SECRET });
    open = await startInventory();
    customer = await signToken(SECRET, { sub: 'shopper-1', role: 'customer' });
  });
  afterAll(async () => {
    await secured?.close();
    await open?.close();
  });

  describe('the cost limit counts what a query asks for', () => {
    const refusal = (body: { errors?: { message: string; extensions?: { code?: string } }[] }) => body.errors?.[0];

    it.each([
      ['a page size passed as a variable', LEDGER, { n: 500 }],
      ['a page size from the variable default', LEDGER.replace('$n: Int', '$n: Int = 500'), {}],
      [
        'twenty aliases of a moderate page',
        `query($n: Int) { ${Array.from({ length: 20 }, (_, i) => `a${i}: products(first: $n) { nodes { movements(first: $n) { nodes { id } } } }`).join(' ')} }`,
        { n: 150 },
      ],
      [
        // No rows, but a page query and a count for each of 10,000 ledgers.
        'twenty aliases of ledgers that ask for no rows',
        `{ ${Array.from({ length: 20 }, (_, i) => `a${i}: products(first: 500) { nodes { movements(first: 0) { totalCount } } }`).join(' ')} }`,
        {},
      ],
    ])('refuses %s to a customer', async (_label, query, variables) => {
      const res = await graphqlClient(urlOf(secured), { token: customer }).request(query, variables);
      expect(refusal(res)?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(refusal(res)?.message).toMatch(/Cost limit of 200000 exceeded/);
      expect(res.data).toBeUndefined();
    });

    it('refuses the same over GET', async () => {
      const res = await fetch(`${urlOf(secured)}?query=${encodeURIComponent(LEDGER)}&variables=${encodeURIComponent('{"n":500}')}`, {
        headers: { accept: 'application/json', authorization: `Bearer ${customer}` },
      });
      const body = (await res.json()) as Parameters<typeof refusal>[0];
      expect(refusal(body)?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(refusal(body)?.message).toMatch(/Cost limit of 200000 exceeded/);
    });

    it('answers the same document with a modest page size: the cost is counted again for each request', async () => {
      const gql = graphqlClient(urlOf(secured), { token: customer });
      expect(refusal(await gql.request(LEDGER, { n: 500 }))?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      const res = await gql.request(LEDGER, { n: 10 });
      expect(res.errors).toBeUndefined();
      expect(res.data).toEqual({ products: { nodes: [] } });
    });
  });

  describe('a page whose name is rebound to this address gets nothing while authentication is off (DNS rebinding)', () => {
    /** What a script on http://evil.example:<port>/ sends once evil.example resolves to 127.0.0.1. */
    const send = (h: InventoryHarness, method: string, path: string, headers: Record<string, string>, body?: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: h.service.port, method, path, headers }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        req.on('error', reject);
        req.end(body);
      });
    const graphql = (h: InventoryHarness, host: string, token?: string) =>
      send(
        h,
        'POST',
        '/graphql',
        { host, 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        '{"query":"{ __typename }"}',
      );

    it('refuses a request for another name with 421 on every path but /health', async () => {
      const host = `evil.example:${open.service.port}`;
      const answer = await graphql(open, host);
      expect(answer.status).toBe(421);
      expect((JSON.parse(answer.body) as { errors: { message: string }[] }).errors[0]?.message).toMatch(
        /answers only requests addressed to localhost or an IP address, not to "evil\.example:\d+"/,
      );
      for (const path of ['/ready', '/metrics', '/graphql?query=%7B__typename%7D']) {
        expect((await send(open, 'GET', path, { host, accept: 'application/json' })).status, path).toBe(421);
      }
      expect((await send(open, 'GET', '/health', { host })).status).toBe(200);
    });

    it('answers requests for localhost and IP addresses', async () => {
      const port = open.service.port;
      for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, `app.localhost:${port}`]) {
        const answer = await graphql(open, host);
        expect(answer.status, host).toBe(200);
        expect(JSON.parse(answer.body), host).toEqual({ data: { __typename: 'Query' } });
      }
    });

    it('answers any name with authentication on: a rebound page has no token', async () => {
      const answer = await graphql(secured, `evil.example:${secured.service.port}`, customer);
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toEqual({ data: { __typename: 'Query' } });
    });
  });

  describe('the body limit holds whatever the content type', () => {
    /**
     * Sends one byte more than the limit in chunks (no content-length) and keeps the request
     * open: only a server that counts as the bytes come can answer.
     */
    const oversized = (url: string, contentType: string | undefined) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(url, {
          method: 'POST',
          headers: { ...(contentType ? { 'content-type': contentType } : {}), accept: 'application/json' },
        });
        req.on('response', (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => {
            resolve({ status: res.statusCode ?? 0, body });
            req.destroy();
          });
        });
        // A server that closes after its answer may cut our writes; the answer is what counts.
        req.on('error', reject);
        const chunk = Buffer.alloc(64 * 1024, 'x');
        let sent = 0;
        const more = () => {
          while (sent <= MAX_REQUEST_BODY_BYTES) {
            sent += chunk.length;
            if (!req.write(chunk)) return void req.once('drain', more);
          }
        };
        more();
      });

    it.each([
      'application/json',
      'application/graphql+json',
      'application/graphql',
      'multipart/form-data; boundary=xyz',
      'application/x-www-form-urlencoded',
      'text/plain',
      undefined,
    ])('answers a chunked body over the limit, sent as %s, with 413 before it ends', async (contentType) => {
      const { status, body } = await oversized(urlOf(open), contentType);
      expect(status).toBe(413);
      expect(body).toContain(`larger than ${MAX_REQUEST_BODY_BYTES} bytes`);
      expect((await open.gql.request('{ __typename }')).data).toEqual({ __typename: 'Query' });
    });
  });

  describe('another web site can neither read nor change anything', () => {
    const evil = 'http://attacker.example';

    it('answers a cross-origin preflight and request without Access-Control-Allow-Origin', async () => {
      const preflight = await fetch(urlOf(open), {
        method: 'OPTIONS',
        headers: { origin: evil, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      });
      expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
      const answers = [
        await fetch(urlOf(open), {
          method: 'POST',
          headers: { origin: evil, 'content-type': 'application/json' },
          body: '{"query":"{ __typename }"}',
        }),
        await fetch(`${urlOf(open)}?query=${encodeURIComponent('{ __typename }')}`, {
          headers: { origin: evil, accept: 'application/json' },
        }),
      ];
      for (const res of answers) {
        expect(res.status).toBe(200);
        expect(res.headers.get('access-control-allow-origin')).toBeNull();
      }
    });

    it.each([
      ['a form', 'application/x-www-form-urlencoded', (m: string) => `query=${encodeURIComponent(m)}`],
      [
        'a multipart form',
        'multipart/form-data; boundary=xyz',
        (m: string) => multipart('xyz', { operations: JSON.stringify({ query: m }) }),
      ],
      ['text/plain', 'text/plain', (m: string) => JSON.stringify({ query: m })],
      ['application/graphql', 'application/graphql', (m: string) => m],
    ])('refuses a mutation posted as %s with 415, and nothing changes', async (_label, contentType, body) => {
      const id = await open.createProduct(`EDGE-${contentType.replace(/\W/g, '-')}`, 5);
      const mutation = `mutation { restock(productId: "${id}", quantity: 100) { availableStock } }`;
      const res = await fetch(urlOf(open), {
        method: 'POST',
        headers: { 'content-type': contentType, origin: evil },
        body: body(mutation),
      });
      expect(res.status).toBe(415);
      const answer = (await res.json()) as { errors: { message: string; extensions: { code: string } }[] };
      expect(answer.errors[0]?.extensions.code).toBe('BAD_REQUEST');
      expect(answer.errors[0]?.message).toMatch(/application\/json/);
      expect((await open.stock(id)).availableStock).toBe(5);
    });

    it('refuses a mutation over GET and answers a query over GET', async () => {
      const get = (query: string) =>
        fetch(`${urlOf(open)}?query=${encodeURIComponent(query)}`, { headers: { accept: 'application/json' } });
      const mutation = await get('mutation { restock(productId: "1", quantity: 1) { id } }');
      expect(mutation.status).toBe(405);
      expect((await (await get('{ __typename }')).json()) as unknown).toEqual({ data: { __typename: 'Query' } });
    });
  });
});

// An instance of its own, started once the others are closed: they all consume the one
// OrderCreated queue, and the order must reach this one.
describe.skipIf(servicesUnavailable)('the ledger tells a customer nothing about orders (real Inventory Service)', () => {
  let secured: InventoryHarness;
  let admin: string;
  let customer: string;

  beforeAll(async () => {
    secured = await startInventory({ AUTH_DISABLED: 'false', AUTH_JWT_SECRET: SECRET });
    admin = await signToken(SECRET, { sub: 'ops', role: 'admin' });
    customer = await signToken(SECRET, { sub: 'shopper-1', role: 'customer' });
  });
  afterAll(async () => secured?.close());

  it("shows a customer the movements of another customer's order without its order id, and an admin with it", async () => {
    const asAdmin = graphqlClient(urlOf(secured), { token: admin });
    const created = await asAdmin.data<{ createProduct: { id: string } }>(
      'mutation { createProduct(input: { sku: "LEDGER-PRIVATE", name: "Ledger", initialStock: 5 }) { id } }',
    );
    const productId = Number(created.createProduct.id);
    await secured.amqp.publish(EXCHANGES.orders, ROUTING_KEYS.orderCreated, {
      event: 'OrderCreated',
      order_id: 'ORD-SOMEONE-ELSE',
      items: [{ product_id: productId, quantity: 2 }],
    });
    await secured.answersFor('ORD-SOMEONE-ELSE');
    const ledger = `{
      stockMovements(productId: "${productId}") { nodes { kind orderId } }
      product(id: "${productId}") { movements { nodes { kind orderId } } }
    }`;
    type Ledger = {
      stockMovements: { nodes: { kind: string; orderId: string | null }[] };
      product: { movements: Ledger['stockMovements'] };
    };
    const seen = (data: Ledger) => [data.stockMovements.nodes, data.product.movements.nodes];

    const asCustomer = await graphqlClient(urlOf(secured), { token: customer }).data<Ledger>(ledger);
    for (const nodes of seen(asCustomer)) {
      expect(nodes).toEqual([
        { kind: 'INITIAL', orderId: null },
        { kind: 'RESERVATION', orderId: null },
      ]);
    }
    for (const nodes of seen(await asAdmin.data<Ledger>(ledger))) {
      expect(nodes).toEqual([
        { kind: 'INITIAL', orderId: null },
        { kind: 'RESERVATION', orderId: 'ORD-SOMEONE-ELSE' },
      ]);
    }
  });
});

function multipart(boundary: string, fields: Record<string, string>): string {
  return `${Object.entries(fields)
    .map(([name, value]) => `--${boundary}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`)
    .join('')}--${boundary}--\r\n`;
}
