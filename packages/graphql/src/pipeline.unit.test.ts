import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildSchema, type GraphQLSchema } from 'graphql';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { OPEN_ACCESS, AppError, createDrainingServer } from '@stockflow/platform';
import { createLogger } from '@stockflow/observability';
import { createGraphqlServer } from './pipeline.ts';
import { negotiateFormat } from './format.ts';

/** The GraphiQL page, as a renderer that fails once (its module failing to load, say), then renders. */
const renderPage = vi.hoisted(() => ({ calls: 0 }));
vi.mock('@graphql-yoga/render-graphiql', () => ({
  renderGraphiQL: () => {
    renderPage.calls += 1;
    return renderPage.calls === 1 ? Promise.reject(new Error('could not load the page')) : Promise.resolve('<html>GraphiQL</html>');
  },
}));

/** Lists whose sizes come from `first` (the cost), items in items (the depth), and a subscription of our making. */
const schema = buildSchema(`
  type Query { items(first: Int = 10): [Item!]! }
  type Mutation { touch: Int }
  type Subscription { ticks(first: Int): [Item!]!, big: String, held: Int, idle: Int, failing: Int }
  type Item { id: Int!, children(first: Int): [Item!]! }
`);
const items = (args: { first?: number | null }) => Array.from({ length: args.first ?? 10 }, (_, id) => ({ id, children: [] }));
let queriesRun = 0;
let touched = 0;
Object.assign(schema.getQueryType()!.getFields().items!, {
  resolve: (_: unknown, args: { first?: number }) => {
    queriesRun += 1;
    return items(args);
  },
});
Object.assign(schema.getMutationType()!.getFields().touch!, { resolve: () => (touched += 1) });

/** What the subscriptions' streams did: how often pulled, whether ended by return(). */
const streams = { pulls: 0, returned: 0, silentReturned: 0, release: undefined as (() => void) | undefined };
/** An iterator that yields at once, forever, until return(). */
const endless = (value: () => unknown): AsyncIterableIterator<unknown> => {
  let done = false;
  const iterator: AsyncIterableIterator<unknown> = {
    next: () =>
      new Promise((resolve) =>
        setImmediate(() => {
          if (done) return resolve({ done: true, value: undefined });
          streams.pulls += 1;
          resolve({ done: false, value: value() });
        }),
      ),
    return: () => {
      done = true;
      streams.returned += 1;
      return Promise.resolve({ done: true, value: undefined });
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
};
/** An iterator that yields nothing until return(), as a subscription waiting for an event. */
const silent = (): AsyncIterableIterator<unknown> => {
  let stop: (() => void) | undefined;
  const iterator: AsyncIterableIterator<unknown> = {
    next: () => new Promise((resolve) => (stop = () => resolve({ done: true, value: undefined }))),
    return: () => {
      streams.silentReturned += 1;
      stop?.();
      return Promise.resolve({ done: true, value: undefined });
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
};
const subscriptionFields = schema.getSubscriptionType()!.getFields();
Object.assign(subscriptionFields.ticks!, {
  subscribe: async function* () {
    yield await Promise.resolve({});
  },
  resolve: (_: unknown, args: { first?: number }) => items(args),
});
Object.assign(subscriptionFields.big!, {
  subscribe: () => endless(() => ({})),
  resolve: () => 'x'.repeat(100_000),
});
Object.assign(subscriptionFields.held!, {
  // Starts only once the test releases it: the client may have left by then.
  subscribe: () =>
    new Promise((resolve) => {
      streams.release = () => resolve(silent());
    }),
  resolve: () => 1,
});

Object.assign(subscriptionFields.idle!, { subscribe: () => silent(), resolve: () => 1 });
Object.assign(subscriptionFields.failing!, {
  // One event, then its source fails (a lost database connection, say).
  subscribe: async function* () {
    yield await Promise.resolve({});
    throw new Error('connection terminated');
  },
  resolve: () => 1,
});

type Answer = { data?: unknown; errors?: { message: string; extensions: { code: string } }[] };

const serve = async (handler: (req: IncomingMessage, res: ServerResponse) => void, existing?: Server) => {
  const server = existing ?? createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql` };
};

const handlerFor = (s: GraphQLSchema, limits: Partial<Parameters<typeof createGraphqlServer>[0]['limits']> = {}, graphiql = false) =>
  createGraphqlServer({
    schema: s,
    logger: createLogger({ name: 'test', level: 'silent' }),
    graphiql,
    authenticate: () => Promise.resolve(OPEN_ACCESS),
    context: () => ({}),
    limits: { maxDepth: 3, maxAliases: 2, maxCost: 1_000, maxTokens: 100, introspection: false, ...limits },
  });

/** The first `next` event's data of a stream, or the JSON body. */
const answerOf = async (res: Response): Promise<{ status: number; answer: Answer }> => {
  const text = await res.text();
  if (!(res.headers.get('content-type') ?? '').startsWith('text/event-stream'))
    return { status: res.status, answer: JSON.parse(text) as Answer };
  const data = /^event: next\ndata: (.*)$/m.exec(text)?.[1];
  return { status: res.status, answer: data ? (JSON.parse(data) as Answer) : {} };
};

describe('one pipeline for every transport', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => ({ server, url } = await serve(handlerFor(schema))));
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  type Params = { query: string; variables?: unknown; operationName?: string };
  const queryString = (p: Params) =>
    '?' +
    new URLSearchParams({
      query: p.query,
      ...(p.variables === undefined ? {} : { variables: JSON.stringify(p.variables) }),
      ...(p.operationName === undefined ? {} : { operationName: p.operationName }),
    }).toString();
  const transports = {
    'POST JSON': (p: Params) =>
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(p) }),
    GET: (p: Params) => fetch(url + queryString(p), { headers: { accept: 'application/json' } }),
    'SSE (POST)': (p: Params) =>
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'text/event-stream' }, body: JSON.stringify(p) }),
    'SSE (GET)': (p: Params) => fetch(url + queryString(p), { headers: { accept: 'text/event-stream' } }),
  };
  const deep = '{ items(first: 1) { children(first: 1) { children(first: 1) { children(first: 1) { id } } } } }';

  it.each<[string, Params, number, string]>([
    ['over the token limit', { query: `{ ${'__typename '.repeat(120)}}` }, 200, 'GRAPHQL_PARSE_FAILED'],
    ['a syntax error', { query: '{ items(' }, 200, 'GRAPHQL_PARSE_FAILED'],
    ['too deep', { query: deep }, 200, 'GRAPHQL_VALIDATION_FAILED'],
    [
      'too many aliases',
      { query: '{ a: items(first: 1) { id } b: items(first: 1) { id } c: items(first: 1) { id } }' },
      200,
      'GRAPHQL_VALIDATION_FAILED',
    ],
    ['introspection while it is off', { query: '{ __schema { types { name } } }' }, 200, 'GRAPHQL_VALIDATION_FAILED'],
    [
      'too costly',
      { query: 'query($n: Int) { items(first: $n) { children(first: $n) { id } } }', variables: { n: 30 } },
      200,
      'GRAPHQL_VALIDATION_FAILED',
    ],
    ['an unknown operationName', { query: 'query A { items(first: 1) { id } }', operationName: 'B' }, 200, 'OPERATION_RESOLUTION_FAILURE'],
    [
      'variables of the wrong type',
      { query: 'query($n: Int) { items(first: $n) { id } }', variables: { n: 'two' } },
      200,
      'BAD_USER_INPUT',
    ],
    ['variables that are not an object', { query: '{ items(first: 1) { id } }', variables: [1] }, 400, 'BAD_REQUEST'],
  ])('refuses %s the same as POST JSON, GET and SSE', async (_label, params, status, code) => {
    const before = queriesRun;
    const refusals = await Promise.all(Object.values(transports).map(async (send) => answerOf(await send(params))));
    const [json] = refusals;
    expect(json?.status).toBe(status);
    expect(json?.answer.errors?.[0]?.extensions.code).toBe(code);
    expect(json?.answer.data).toBeUndefined();
    expect(refusals).toEqual(Object.values(transports).map(() => json));
    expect(queriesRun).toBe(before);
  });

  it('answers a query the same over every transport', async () => {
    const params = { query: 'query($n: Int) { items(first: $n) { id } }', variables: { n: 2 } };
    const answers = await Promise.all(Object.values(transports).map(async (send) => answerOf(await send(params))));
    expect(answers).toEqual(Object.values(transports).map(() => ({ status: 200, answer: { data: { items: [{ id: 0 }, { id: 1 }] } } })));
  });

  it('writes a query over SSE as one next event, then complete, as graphql-yoga did', async () => {
    const res = await transports['SSE (POST)']({ query: '{ items(first: 1) { id } }' });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    expect(await res.text()).toBe(':\n\nevent: next\ndata: {"data":{"items":[{"id":0}]}}\n\nevent: complete\ndata:\n\n');
  });

  it('streams a subscription as next events, then complete', async () => {
    const res = await transports['SSE (GET)']({ query: 'subscription { ticks(first: 1) { id } }' });
    expect(await res.text()).toBe(':\n\nevent: next\ndata: {"data":{"ticks":[{"id":0}]}}\n\nevent: complete\ndata:\n\n');
  });

  it('refuses a mutation over GET with 405 (Allow: POST), and runs it over POST', async () => {
    const before = touched;
    const res = await transports.GET({ query: 'mutation { touch }' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    expect(((await res.json()) as Answer).errors?.[0]?.extensions.code).toBe('BAD_REQUEST');
    expect((await transports['SSE (GET)']({ query: 'mutation { touch }' })).status).toBe(405);
    expect(touched).toBe(before);
    expect((await answerOf(await transports['SSE (POST)']({ query: 'mutation { touch }' }))).answer).toEqual({
      data: { touch: before + 1 },
    });
  });

  it('refuses a subscription asked for as JSON with 406 and says how to ask', async () => {
    for (const send of [transports['POST JSON'], transports.GET]) {
      const res = await send({ query: 'subscription { ticks(first: 1) { id } }' });
      expect(res.status).toBe(406);
      expect(((await res.json()) as Answer).errors?.[0]?.message).toMatch(/text\/event-stream/);
    }
  });

  it.each([
    ['no Accept header', undefined, 'json'],
    ['*/*', '*/*', 'json'],
    ['GraphiQL', 'application/graphql-response+json, application/json, multipart/mixed', 'json'],
    ['SSE', 'text/event-stream', 'sse'],
    ['the first of equals', 'text/event-stream, application/json', 'sse'],
    ['the higher q-value', 'text/event-stream;q=0.5, application/json', 'json'],
    ['q=0 as not acceptable', 'application/json;q=0, text/event-stream;q=0.1', 'sse'],
    ['a browser (graphiql off)', 'text/html,application/xhtml+xml,*/*;q=0.8', 'json'],
    ['nothing served', 'text/html, multipart/mixed', undefined],
    ['only not acceptable', 'application/json;q=0', undefined],
  ])('negotiates the format: %s', (_label, accept, format) => {
    expect(negotiateFormat(accept)).toBe(format);
  });

  it('answers 406 when nothing acceptable is served', async () => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'multipart/mixed' },
      body: '{"query":"{ __typename }"}',
    });
    expect(res.status).toBe(406);
    expect(((await res.json()) as Answer).errors?.[0]?.extensions.code).toBe('BAD_REQUEST');
  });

  it.each([
    ['a batch', '[{"query":"{ __typename }"}]', /batches are not served/],
    ['an unknown parameter', '{"query":"{ __typename }","frobnicate":true}', /Unexpected parameter "frobnicate"/],
    ['no query', '{"variables":{}}', /"query" must be a string/],
    ['an operationName that is not a string', '{"query":"{ __typename }","operationName":1}', /"operationName" must be a string/],
    ['a body that is not JSON', '{"query":', /The body is not JSON/],
  ])('refuses %s with 400 BAD_REQUEST and says why', async (_label, body, message) => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'text/event-stream' }, body });
    expect(res.status).toBe(400);
    expect(((await res.json()) as Answer).errors?.[0]).toEqual({
      message: expect.stringMatching(message) as unknown,
      extensions: { code: 'BAD_REQUEST' },
    });
  });

  it('refuses GET variables that are not JSON, and a GET without a query, with 400', async () => {
    const notJson = await fetch(`${url}?query=${encodeURIComponent('{ __typename }')}&variables=%7Bn`, {
      headers: { accept: 'application/json' },
    });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as Answer).errors?.[0]?.message).toMatch(/"variables" must be JSON-encoded/);
    expect((await fetch(`${url}?foo=bar`)).status).toBe(400);
  });

  it('ignores query parameters GET does not use', async () => {
    const res = await fetch(`${url}?query=${encodeURIComponent('{ __typename }')}&utm_source=x&operationName=`);
    expect(await res.json()).toEqual({ data: { __typename: 'Query' } });
  });

  it('answers 404 off /graphql, 405 (Allow: GET, HEAD, POST) to other methods, and HEAD with headers only, running nothing', async () => {
    expect((await fetch(url.replace('/graphql', '/graphiql'))).status).toBe(404);
    const put = await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"query":"{ __typename }"}' });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, HEAD, POST');
    const before = queriesRun;
    const head = await fetch(`${url}?query=${encodeURIComponent('{ items(first: 1) { id } }')}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toMatch(/application\/json/);
    expect(queriesRun).toBe(before);
    expect((await fetch(`${url}?query=${encodeURIComponent('mutation { touch }')}`, { method: 'HEAD' })).status).toBe(405);
  });
});

/** A raw request whose response is not read until the test says so. */
const openStream = (url: string, query: string) =>
  new Promise<{ res: IncomingMessage; req: ReturnType<typeof request> }>((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'text/event-stream' } }, (res) =>
      resolve({ res, req }),
    );
    req.on('error', reject);
    req.end(JSON.stringify({ query }));
  });
const eventually = async (check: () => boolean, ms = 5_000) => {
  const until = Date.now() + ms;
  while (!check() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
  return check();
};

describe('a subscription stream', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => ({ server, url } = await serve(handlerFor(schema))));
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('waits for a slow client rather than buffer its events', async () => {
    streams.pulls = 0;
    const { res, req } = await openStream(url, 'subscription { big }');
    res.pause();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    // 100 kB events: the socket's buffers hold a few dozen; without waiting, thousands are written.
    expect(streams.pulls).toBeGreaterThan(0);
    expect(streams.pulls).toBeLessThan(200);
    req.destroy();
  });

  it.each([
    ['a busy subscription', 'big', 'returned'],
    ['an idle subscription (waiting for an event that may never come)', 'idle', 'silentReturned'],
  ] as const)('ends %s when its client leaves', async (_name, field, counter) => {
    streams[counter] = 0;
    const { res, req } = await openStream(url, `subscription { ${field} }`);
    res.resume();
    req.destroy();
    expect(await eventually(() => streams[counter] === 1)).toBe(true);
  });

  it("sends a source's failure as the stream's last event, masked, then completes, rather than cutting the connection", async () => {
    const { res } = await openStream(url, 'subscription { failing }');
    let text = '';
    for await (const chunk of res) text += String(chunk);
    const events = text.split('\n\n').filter((e) => e.startsWith('event:'));
    expect(events).toEqual([
      'event: next\ndata: {"data":{"failing":1}}',
      'event: next\ndata: {"errors":[{"message":"Unexpected error.","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}',
      'event: complete\ndata:',
    ]);
  });

  it('ends the subscription when its client left while it was starting', async () => {
    streams.silentReturned = 0;
    streams.release = undefined;
    const client = openStream(url, 'subscription { held }').catch(() => undefined);
    expect(await eventually(() => streams.release !== undefined)).toBe(true);
    // The server has not answered yet: the client gives up.
    const sockets = await new Promise<number>((resolve) => server.getConnections((_e, n) => resolve(n)));
    expect(sockets).toBe(1);
    server.closeAllConnections();
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Set by the subscription meanwhile, which the narrowing after the assignment above cannot see.
    (streams.release as (() => void) | undefined)?.();
    await client;
    expect(await eventually(() => streams.silentReturned === 1)).toBe(true);
  });
});

describe('a subscription at shutdown', () => {
  it('is cut when its server begins to close, which then closes', async () => {
    const draining = createDrainingServer(handlerFor(schema));
    const { url } = await serve(() => undefined, draining.server);
    streams.returned = 0;
    const { res } = await openStream(url, 'subscription { big }');
    res.resume();
    const ended = new Promise<void>((resolve) => res.once('close', () => resolve()));
    const closed = draining.close();
    await ended;
    await closed;
    expect(await eventually(() => streams.returned === 1)).toBe(true);
  });
});

describe('the GraphiQL page', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    const handler = createGraphqlServer({
      schema,
      logger: createLogger({ name: 'test', level: 'silent' }),
      graphiql: true,
      // Every token refused: the page needs none, an operation does.
      authenticate: () => Promise.reject(new AppError('UNAUTHENTICATED', 'no token')),
      context: () => ({}),
      limits: { maxDepth: 3, maxAliases: 2, maxCost: 1_000, maxTokens: 100, introspection: false },
    });
    ({ server, url } = await serve(handler));
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('is rendered once and kept, a failed rendering not kept', async () => {
    const page = () => fetch(url, { headers: { accept: 'text/html' } });
    expect((await page()).status).toBe(500);
    const second = await page();
    expect(second.status).toBe(200);
    expect(second.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await second.text()).toBe('<html>GraphiQL</html>');
    expect(await (await page()).text()).toBe('<html>GraphiQL</html>');
    expect(renderPage.calls).toBe(2);
  });

  it('refuses an operation without a valid token with the same 401 over POST JSON, GET and SSE, running nothing', async () => {
    const before = queriesRun;
    const query = '{ items(first: 1) { id } }';
    const post = (accept: string) =>
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept }, body: JSON.stringify({ query }) });
    const get = (accept: string) => fetch(`${url}?query=${encodeURIComponent(query)}`, { headers: { accept } });
    const refusals = await Promise.all(
      [post('application/json'), get('application/json'), post('text/event-stream'), get('text/event-stream')].map(async (sent) => {
        const res = await sent;
        return { status: res.status, authenticate: res.headers.get('www-authenticate'), body: (await res.json()) as unknown };
      }),
    );
    expect(refusals[0]).toMatchObject({
      status: 401,
      authenticate: 'Bearer',
      body: { errors: [{ extensions: { code: 'UNAUTHENTICATED' } }] },
    });
    expect(refusals).toEqual(refusals.map(() => refusals[0]));
    expect(queriesRun).toBe(before);
  });

  it('is all a request for it gets, without a token: its operation does not run', async () => {
    const before = queriesRun;
    const res = await fetch(`${url}?query=${encodeURIComponent('{ items(first: 1) { id } }')}`, { headers: { accept: 'text/html' } });
    expect(await res.text()).toBe('<html>GraphiQL</html>');
    expect(queriesRun).toBe(before);
    const asJson = await fetch(`${url}?query=${encodeURIComponent('{ items(first: 1) { id } }')}`, {
      headers: { accept: 'application/json' },
    });
    expect(asJson.status).toBe(401);
    expect(queriesRun).toBe(before);
  });
});
