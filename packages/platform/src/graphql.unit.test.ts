import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GraphQLInt, GraphQLNonNull, GraphQLObjectType, GraphQLSchema, GraphQLString } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPEN_ACCESS } from './auth.ts';
import { NotFoundError } from './errors.ts';
import { createGraphqlServer, MAX_REQUEST_BODY_BYTES } from './graphql.ts';
import { createLogger } from './logger.ts';

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

  it('answers the same as graphql-yoga does for the same query over GET', async () => {
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

  it('hands requests it does not recognise to graphql-yoga (an unknown body parameter is refused)', async () => {
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
