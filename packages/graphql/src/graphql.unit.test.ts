import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildSchema, GraphQLInt, GraphQLNonNull, GraphQLObjectType, GraphQLSchema, GraphQLString } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPEN_ACCESS, NotFoundError } from '@stockflow/platform';
import { createLogger } from '@stockflow/observability';
import { createGraphqlServer } from './pipeline.ts';
import { documentPreparer } from './documents.ts';
import { MAX_REQUEST_BODY_BYTES } from './request-body.ts';
import { plainRequest } from './params.ts';

const schema = new GraphQLSchema({
  query: new GraphQLObjectType({
    name: 'Query',
    fields: {
      greeting: {
        type: GraphQLString,
        args: { name: { type: new GraphQLNonNull(GraphQLString) } },
        resolve: (_r, a: { name: string }) => `hello ${a.name}`,
      },
      missing: {
        type: GraphQLString,
        resolve: () => {
          throw new NotFoundError('nothing here', { what: 'missing' });
        },
      },
      broken: {
        type: GraphQLString,
        resolve: () => {
          throw new Error('SELECT secret FROM somewhere failed');
        },
      },
    },
  }),
  mutation: new GraphQLObjectType({
    name: 'Mutation',
    fields: {
      double: { type: GraphQLInt, args: { n: { type: new GraphQLNonNull(GraphQLInt) } }, resolve: (_r, a: { n: number }) => a.n * 2 },
    },
  }),
});

describe('GraphQL endpoint', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    const handler = createGraphqlServer({
      schema,
      logger: createLogger({ name: 'test', level: 'silent' }),
      graphiql: false,
      authenticate: () => Promise.resolve(OPEN_ACCESS),
      context: () => ({}),
      limits: { maxDepth: 10, maxAliases: 20, maxCost: 1_000_000, maxTokens: 2_000, introspection: true },
    });
    server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const post = async (body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return {
      status: res.status,
      body: (await res.json()) as { data?: unknown; errors?: { message: string; extensions: { code: string } }[] },
    };
  };

  it('answers queries and mutations with variables', async () => {
    expect(await post({ query: 'query($n: String!) { greeting(name: $n) }', variables: { n: 'ada' } })).toEqual({
      status: 200,
      body: { data: { greeting: 'hello ada' } },
    });
    expect((await post({ query: 'mutation { double(n: 21) }' })).body).toEqual({ data: { double: 42 } });
  });

  it('answers a query over GET as over POST', async () => {
    const query = '{ greeting(name: "bob") missing }';
    const res = await fetch(`${url}?query=${encodeURIComponent(query)}`, { headers: { accept: 'application/json' } });
    const viaGet: unknown = await res.json();
    expect((await post({ query })).body).toEqual(viaGet);
  });

  it.each([
    ['a syntax error', { query: '{ greeting(' }, 'GRAPHQL_PARSE_FAILED'],
    ['an unknown field', { query: '{ nope }' }, 'GRAPHQL_VALIDATION_FAILED'],
    ['a variable of the wrong type', { query: 'mutation($n: Int!) { double(n: $n) }', variables: { n: 'two' } }, 'BAD_USER_INPUT'],
    ['a coded application error', { query: '{ missing }' }, 'NOT_FOUND'],
  ])('answers %s with its code', async (_label, body, code) => {
    const { status, body: answer } = await post(body);
    expect(status).toBe(200);
    expect(answer.errors?.[0]?.extensions.code).toBe(code);
  });

  it('masks an unexpected error: no message, no SQL', async () => {
    const { body } = await post({ query: '{ broken }' });
    expect(body.errors).toEqual([expect.objectContaining({ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } })]);
    expect(JSON.stringify(body)).not.toContain('SELECT');
  });

  it('refuses an unknown body parameter with 400 BAD_REQUEST', async () => {
    const { status, body } = await post({ query: '{ greeting(name: "x") }', frobnicate: true });
    expect(status).toBe(400);
    expect(body.errors?.[0]?.extensions.code).toBe('BAD_REQUEST');
  });

  it('refuses a body over the size limit with 413', async () => {
    const { status, body } = await post({ query: `{ greeting(name: "${'x'.repeat(MAX_REQUEST_BODY_BYTES)}") }` });
    expect(status).toBe(413);
    expect(body.errors?.[0]?.extensions.code).toBe('BAD_REQUEST');
  });
});

/** Lists whose sizes come from `first`, on every root, for the cost limit. */
const listSchema = buildSchema(`
  type Query { items(first: Int = 100): [Item!]! }
  type Mutation { touch: Int }
  type Subscription { ticks(first: Int): [Item!]! }
  type Item { id: Int!, children(first: Int): [Item!]! }
`);
const items = (args: { first?: number | null }) => Array.from({ length: args.first ?? 100 }, (_, id) => ({ id, children: [] }));
Object.assign(listSchema.getQueryType()!.getFields().items!, { resolve: (_: unknown, args: { first?: number }) => items(args) });
Object.assign(listSchema.getMutationType()!.getFields().touch!, { resolve: () => 1 });
Object.assign(listSchema.getSubscriptionType()!.getFields().ticks!, {
  subscribe: async function* () {
    yield await Promise.resolve({});
  },
  resolve: (_: unknown, args: { first?: number }) => items(args),
});

describe('GraphQL endpoint: cost, body types and origins', () => {
  let server: Server;
  let url: string;
  const shop = 'https://shop.example';
  beforeAll(async () => {
    const handler = createGraphqlServer({
      schema: listSchema,
      logger: createLogger({ name: 'test', level: 'silent' }),
      graphiql: true,
      authenticate: () => Promise.resolve(OPEN_ACCESS),
      context: () => ({}),
      limits: { maxDepth: 10, maxAliases: 20, maxCost: 1_000, maxTokens: 2_000, introspection: true },
      corsOrigins: [shop],
    });
    server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  type Answer = { data?: unknown; errors?: { message: string; extensions: { code: string } }[] };
  const post = async (body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Answer };
  };
  const nested = 'query($n: Int) { items(first: $n) { children(first: $n) { id } } }';
  const costRefusal = (answer: Answer) => {
    expect(answer.errors?.[0]?.extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(answer.errors?.[0]?.message).toMatch(/^Cost limit of 1000 exceeded: this request asks for \d+/);
    expect(answer.data).toBeUndefined();
  };

  it('counts page sizes passed as variables, for each request of the same document', async () => {
    costRefusal((await post({ query: nested, variables: { n: 30 } })).body);
    expect((await post({ query: nested, variables: { n: 2 } })).body).toEqual({
      data: { items: [{ children: [] }, { children: [] }] },
    });
    costRefusal((await post({ query: nested.replace('$n: Int', '$n: Int = 30') })).body);
  });

  it("counts an argument's schema default, and a nested list's default page size", async () => {
    expect((await post({ query: '{ items { id } }' })).body.data).toEqual({ items: items({}).map(({ id }) => ({ id })) });
    costRefusal((await post({ query: '{ items { children { id } } }' })).body);
  });

  it('counts the same over GET and for a subscription over server-sent events', async () => {
    const get = await fetch(`${url}?query=${encodeURIComponent(nested)}&variables=${encodeURIComponent('{"n":30}')}`, {
      headers: { accept: 'application/json' },
    });
    costRefusal((await get.json()) as Answer);

    const subscribe = (n: number) =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query: 'subscription($n: Int) { ticks(first: $n) { id } }', variables: { n } }),
      }).then((res) => res.text());
    const events = (text: string) =>
      text
        .split('\n')
        .filter((line) => line.startsWith('data:') && line.length > 6)
        .map((line) => JSON.parse(line.slice(5)) as Answer);
    costRefusal(events(await subscribe(1_000))[0] ?? {});
    expect(events(await subscribe(2))).toEqual([{ data: { ticks: [{ id: 0 }, { id: 1 }] } }]);
  });

  it.each([
    ['application/x-www-form-urlencoded', `query=${encodeURIComponent('mutation { touch }')}`],
    [
      'multipart/form-data; boundary=b',
      '--b\r\ncontent-disposition: form-data; name="operations"\r\n\r\n{"query":"mutation { touch }"}\r\n--b--\r\n',
    ],
    ['text/plain', '{"query":"mutation { touch }"}'],
    ['application/graphql', 'mutation { touch }'],
  ])('refuses an operation posted as %s with 415', async (contentType, body) => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': contentType }, body });
    expect(res.status).toBe(415);
    expect(((await res.json()) as Answer).errors?.[0]).toEqual({
      message: expect.stringMatching(/^A POST body must be application\/json/) as unknown,
      extensions: { code: 'BAD_REQUEST' },
    });
  });

  it('answers the origins of CORS_ORIGINS, over POST and GET, and no other', async () => {
    const preflight = (origin: string) =>
      fetch(url, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
      });
    const allowed = await preflight(shop);
    expect(allowed.status).toBe(204);
    expect(Object.fromEntries([...allowed.headers].filter(([name]) => name.startsWith('access-control-')))).toEqual({
      'access-control-allow-origin': shop,
      'access-control-allow-methods': 'GET, POST',
      'access-control-allow-headers': 'authorization, content-type',
      'access-control-max-age': '600',
    });
    const refused = await preflight('https://shop.example.evil');
    expect([...refused.headers].filter(([name]) => name.startsWith('access-control-'))).toEqual([]);

    const direct = await post({ query: '{ items(first: 1) { id } }' }, { origin: shop });
    expect(direct.headers.get('access-control-allow-origin')).toBe(shop);
    expect(direct.headers.get('vary')).toBe('Origin');
    const viaGet = await fetch(`${url}?query=${encodeURIComponent('{ items(first: 1) { id } }')}`, {
      headers: { accept: 'application/json', origin: shop },
    });
    expect(viaGet.headers.get('access-control-allow-origin')).toBe(shop);
    const other = await post({ query: '{ items(first: 1) { id } }' }, { origin: 'http://localhost:3000' });
    expect(other.status).toBe(200);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('still serves GraphiQL, which posts JSON', async () => {
    const page = await fetch(url, { headers: { accept: 'text/html' } });
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const graphiqlPost = await post(
      { query: 'mutation { touch }', operationName: null, variables: {} },
      { accept: 'application/graphql-response+json, application/json, multipart/mixed' },
    );
    expect(graphiqlPost.body).toEqual({ data: { touch: 1 } });
  });
});

describe('the document cache', () => {
  const prepare = documentPreparer(buildSchema('type Query { a: Int }'), {
    maxDepth: 10,
    maxAliases: 10,
    maxTokens: 100,
    introspection: false,
  });

  it('keeps a document once judged, and not one whose text is long (a comment would make each entry a megabyte)', () => {
    expect(prepare('{ a }', undefined)).toBe(prepare('{ a }', undefined));
    const long = `{ a } # ${'x'.repeat(100_000)}`;
    const first = prepare(long, undefined);
    expect('document' in first).toBe(true);
    expect(prepare(long, undefined)).not.toBe(first);
  });
});

describe('a plain request (the one the gateway forwards whole)', () => {
  const asking = (accept: string | undefined) =>
    plainRequest({
      method: 'POST',
      url: '/graphql',
      headers: { 'content-type': 'application/json', ...(accept ? { accept } : {}) },
    } as never);

  it('is one whose Accept the services answer with JSON, weighed as they weigh it (q-values included)', () => {
    expect(asking(undefined)).toBe(true);
    expect(asking('application/graphql-response+json')).toBe(true);
    expect(asking('*/*')).toBe(true);
    expect(asking('application/json;q=0, text/event-stream')).toBe(false);
    expect(asking('text/event-stream')).toBe(false);
  });
});
