import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger } from '@stockflow/observability';
import { MAX_REQUEST_BODY_BYTES } from '@stockflow/graphql';
import { signToken } from '@stockflow/client';
import type { RunningService } from '@stockflow/runtime';
import { createTestDatabase, graphqlClient, type TestDatabase } from '@stockflow/testing';
import { loadOrdersConfig } from '../src/config.ts';
import { startOrdersService } from '../src/service.ts';

const servicesUnavailable = inject('servicesUnavailable');
const SECRET = 'a-test-secret-that-is-at-least-32-characters-long';

/** A small deterministic PRNG (mulberry32), so a failing case can be found again. */
function prng(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

describe.skipIf(servicesUnavailable)('request hardening (production settings)', () => {
  let db: TestDatabase;
  let service: RunningService;
  let url: string;
  let token: string;

  beforeAll(async () => {
    db = await createTestDatabase('hardening_orders');
    service = await startOrdersService(
      loadOrdersConfig({
        DATABASE_URL: db.url,
        AMQP_URL: inject('amqpUrl'),
        PORT: '0',
        HOST: '127.0.0.1',
        NODE_ENV: 'production',
        AUTH_JWT_SECRET: SECRET,
        GRAPHQL_MAX_DEPTH: '3',
        GRAPHQL_MAX_ALIASES: '5',
        GRAPHQL_MAX_COST: '5000',
        GRAPHQL_MAX_TOKENS: '300',
        CREATE_ORDER_RATE_LIMIT: '0',
      }),
      createLogger({ name: 'test', level: 'silent' }),
    );
    url = `http://127.0.0.1:${service.port}/graphql`;
    token = await signToken(SECRET, { sub: 'ops', role: 'admin' });
  });
  afterAll(async () => {
    await service?.close();
    await db?.drop();
  });

  const codeOf = async (query: string) => (await graphqlClient(url, { token }).request(query)).errors?.[0];

  it.each([
    ['a query deeper than GRAPHQL_MAX_DEPTH', '{ orders { nodes { items { productId } } } }', /depth limit of 3/],
    [
      'more aliases than GRAPHQL_MAX_ALIASES',
      `{ ${Array.from({ length: 6 }, (_, i) => `a${i}: orders { totalCount }`).join(' ')} }`,
      /Aliases limit of 5/,
    ],
    [
      'a query costlier than GRAPHQL_MAX_COST',
      '{ a: orders(first: 500) { nodes { id status reason createdAt updatedAt } } b: orders(first: 500) { nodes { id status reason createdAt updatedAt } } }',
      /Cost limit of 5000/,
    ],
    ['introspection in production', '{ __schema { types { name } } }', /introspection/i],
  ])('refuses %s', async (_label, query, message) => {
    const error = await codeOf(query);
    expect(error?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(error?.message).toMatch(message);
  });

  it('holds a GET to the same limits, several in a row', async () => {
    for (let i = 0; i < 3; i += 1) {
      const res = await fetch(`${url}?query=${encodeURIComponent('{ orders { nodes { items { productId } } } }')}`, {
        headers: { accept: 'application/json', authorization: `Bearer ${token}` },
      });
      const body = (await res.json()) as { errors?: { message: string; extensions?: { code?: string } }[] };
      expect(body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(body.errors?.[0]?.message).toMatch(/depth limit of 3/);
    }
  });

  it('refuses a document with more tokens than GRAPHQL_MAX_TOKENS', async () => {
    const error = await codeOf(`{ ${Array.from({ length: 400 }, () => '__typename').join(' ')} }`);
    expect(error?.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
    expect(error?.message).toMatch(/contains more th.. 300 tokens/);
  });

  it('refuses a body over the size limit with 413', async () => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(MAX_REQUEST_BODY_BYTES) } }),
    });
    expect(res.status).toBe(413);
    // Whatever the content type: the size is refused before the type is looked at.
    const plain = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', authorization: `Bearer ${token}` },
      body: 'x'.repeat(MAX_REQUEST_BODY_BYTES + 1),
    });
    expect(plain.status).toBe(413);
  });

  it('serves no GraphiQL page in production', async () => {
    const res = await fetch(url, { headers: { accept: 'text/html' } });
    expect(res.headers.get('content-type') ?? '').not.toMatch(/html/);
  });

  it('answers hundreds of malformed requests with coded errors: never a 500, a stack trace, SQL or a crash', async () => {
    const random = prng(20261125);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
    // Any code point but the surrogate halves, which no string can carry on its own.
    const junk = (n: number) => Array.from({ length: n }, () => String.fromCodePoint(Math.floor(random() * 0xd7ff))).join('');
    const values = [
      null,
      true,
      -1,
      0,
      2 ** 53,
      1e308,
      -0.5,
      'x',
      '',
      junk(50),
      [],
      [1, 'a'],
      {},
      { a: { b: { c: [] } } },
      'ORD-x'.repeat(200),
    ];
    const createOrder = 'mutation($input: CreateOrderInput!) { createOrder(input: $input) { id status } }';
    const queries = [
      createOrder,
      '{ order(id: $id) { id } }',
      'query($id: ID!) { order(id: $id) { id status items { productId quantity } } }',
      'query($first: Int, $after: String) { orders(first: $first, after: $after) { totalCount nodes { id } } }',
      'mutation($id: ID!, $reason: String) { cancelOrder(id: $id, reason: $reason) { id } }',
      '{ orders(status: NOPE) { totalCount } }',
      '{',
      '}}}}',
      'query { order(id: "\\u0000") { id } }',
      'subscription { orderStatusChanged(id: "x") { id } }',
      'mutation { createOrder(input: {customerId: "", items: []}) { id } }',
      'fragment f on Order { ...f } { orders { nodes { ...f } } }',
      '{ __typename @skip(if: true) @skip(if: false) }',
    ];
    const variableSets = () => [
      { input: { customerId: pick(values), items: pick([[], [{ productId: pick(values), quantity: pick(values) }], pick(values)]) } },
      { input: pick(values) },
      { id: pick(values), first: pick(values), after: pick(values), reason: pick(values) },
      pick(values),
    ];
    const bodies = (): (string | Buffer)[] => [
      JSON.stringify({ query: pick(queries), variables: pick(variableSets()) }),
      JSON.stringify({ query: pick(queries), operationName: pick(values) }),
      JSON.stringify({ query: pick(values) }),
      JSON.stringify(pick(values)),
      JSON.stringify({ query: pick(queries) }).slice(0, Math.floor(random() * 40)),
      junk(Math.floor(random() * 200)),
      Buffer.from(Array.from({ length: 64 }, () => Math.floor(random() * 256))),
      JSON.stringify([{ query: '{ __typename }' }, { query: pick(queries) }]),
      JSON.stringify({ query: `{ ${'a: '.repeat(50)} }` }),
      JSON.stringify({ query: '{ __typename }', extensions: pick(values) }),
    ];
    const contentTypes = [
      'application/json',
      'application/json; charset=utf-8',
      'text/plain',
      'application/graphql',
      'application/x-www-form-urlencoded',
      '',
    ];

    let cases = 0;
    for (let i = 0; i < 400; i += 1) {
      const method = random() < 0.9 ? 'POST' : pick(['GET', 'PUT', 'DELETE', 'PATCH']);
      const headers: Record<string, string> = {
        authorization: `Bearer ${token}`,
        accept: pick(['application/json', '*/*', 'application/graphql-response+json', 'text/html']),
      };
      const contentType = pick(contentTypes);
      if (contentType) headers['content-type'] = contentType;
      const target = method === 'GET' ? `${url}?query=${encodeURIComponent(pick(queries))}&variables=${encodeURIComponent(junk(10))}` : url;
      const body = pick(bodies());
      const res = await fetch(target, {
        method,
        headers,
        body: method === 'GET' ? undefined : typeof body === 'string' ? body : new Uint8Array(body),
      });
      const text = await res.text();
      cases += 1;
      const where = `case ${i}: ${method} ${contentType} -> ${res.status} ${text.slice(0, 200)}`;
      expect(res.status, where).toBeLessThan(500);
      expect(text, where).not.toMatch(/\n\s+at |SELECT |INSERT |node_modules/);
      if ((res.headers.get('content-type') ?? '').includes('json') && text.trim().startsWith('{')) {
        const body = JSON.parse(text) as { errors?: { extensions?: { code?: unknown } }[] };
        for (const error of body.errors ?? []) expect(typeof error.extensions?.code, where).toBe('string');
      }
    }
    expect(cases).toBe(400);
    expect((await fetch(`http://127.0.0.1:${service.port}/health`)).status).toBe(200);
    expect((await graphqlClient(url, { token }).request('{ __typename }')).data).toEqual({ __typename: 'Query' });
  });
});
