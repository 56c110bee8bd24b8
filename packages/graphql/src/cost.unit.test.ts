import { buildSchema, getOperationAST, parse, type GraphQLObjectType } from 'graphql';
import { describe, expect, it } from 'vitest';
import { MAX_ITEMS_EXTENSION, operationCost, QUERY_COST } from './cost.ts';

const schema = buildSchema(`
  type Query {
    items(first: Int = 30): [Item!]!
    page(first: Int): ItemPage!
    item: Item
    everything: [Item!]!
  }
  type Item { id: Int!, tags: [String!]!, children(first: Int): [Item!]!, history(first: Int): ItemPage! }
  type ItemPage { total: Int!, nodes: [Item!]!, edges: [ItemEdge!]!, info: Info! }
  type ItemEdge { cursor: String!, node: Item! }
  type Info { end: String }
`);
// What Pothos makes of `extensions: { maxItems: 3 }` on the field.
(schema.getType('Item') as GraphQLObjectType).getFields().tags!.extensions = { [MAX_ITEMS_EXTENSION]: 3 };

const costOf = (query: string, variables: Record<string, unknown> = {}) => {
  const document = parse(query);
  const operation = getOperationAST(document);
  if (!operation) throw new Error('no operation');
  return operationCost(schema, document, operation, variables);
};

describe('operation cost', () => {
  it.each([
    ['one field', '{ item { id } }', 2],
    ['a literal first, and the query a paged field runs', '{ items(first: 2) { id } }', 2 * 2 + QUERY_COST],
    ["the argument's schema default", '{ items { id } }', 30 * 2 + QUERY_COST],
    [
      'a nested list without first: the default page size',
      '{ items(first: 2) { children { id } } }',
      QUERY_COST + 2 * (1 + 50 * 2 + QUERY_COST),
    ],
    ['a list without first that declares its most', '{ item { tags } }', 1 + 3],
    ['a list that declares nothing: the largest page', '{ everything { id } }', 500 * 2],
    [
      'a connection: its rows, and nodes and edges as its page',
      '{ page(first: 4) { total nodes { id } edges { node { id } } info { end } } }',
      1 + 4 + 2 * QUERY_COST + 1 + 4 * 2 + 4 * (1 + 2) + 2,
    ],
    ['a connection without first: the default page size', '{ page { nodes { id } } }', 1 + 50 + 2 * QUERY_COST + 50 * 2],
    ['the page and count queries of a connection asked for no rows', '{ page(first: 0) { total } }', 1 + 2 * QUERY_COST + 1],
    ['aliases, each', '{ a: items(first: 2) { id } b: items(first: 2) { id } }', 2 * (2 * 2 + QUERY_COST)],
    [
      'a fragment, where it is spread',
      '{ items(first: 2) { ...F } } fragment F on Item { id children(first: 3) { id } }',
      QUERY_COST + 2 * (1 + 1 + 3 * 2 + QUERY_COST),
    ],
    ['introspection, whatever it selects', '{ __typename __schema { types { fields { name } } } }', 2],
  ])('counts %s', (_label, query, cost) => {
    expect(costOf(query)).toEqual({ cost, dependsOnVariables: false });
  });

  it('counts a page size passed as a variable, or its default, and says the cost depends on the variables', () => {
    const query = 'query($n: Int) { items(first: $n) { children(first: $n) { id } } }';
    const cost = (n: number) => QUERY_COST + n * (1 + n * 2 + QUERY_COST);
    expect(costOf(query, { n: 500 })).toEqual({ cost: cost(500), dependsOnVariables: true });
    expect(costOf(query, { n: null })).toEqual({ cost: cost(50), dependsOnVariables: true });
    expect(costOf(query, { n: 1 }).cost).toBe(cost(1));
  });

  it('counts the queries of connections inside lists, each time they appear, even when they ask for no rows', () => {
    // 20 aliases of this ran 20,000 SQL statements (a page and a count each) for a cost of 40,020.
    const query = `{ ${Array.from({ length: 20 }, (_, i) => `a${i}: page(first: 500) { nodes { history(first: 0) { total } } }`).join(' ')} }`;
    const rows = 20 * (1 + 500 + 500 * (1 + 1 + 1));
    const queries = 20 * (1 + 500) * 2 * QUERY_COST;
    expect(costOf(query).cost).toBe(rows + queries);
    expect(costOf(query).cost).toBeGreaterThan(200_000);
  });

  it('stays linear in the document when fragments spread each other many times', () => {
    const levels = 40;
    const fragments = Array.from(
      { length: levels },
      (_, i) => `fragment F${i} on Item { a: children(first: 2) { ...F${i + 1} } b: children(first: 2) { ...F${i + 1} } }`,
    );
    const query = `{ items(first: 1) { ...F0 } } ${fragments.join(' ')} fragment F${levels} on Item { id }`;
    expect(costOf(query).cost).toBeGreaterThan(4 ** levels);
  });
});
