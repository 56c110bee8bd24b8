import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { subgraphRouter } from './route.ts';

const supergraph = readFileSync(path.join(import.meta.dirname, '..', 'supergraph.graphql'), 'utf8');
const route = subgraphRouter(parse(supergraph));
const routed = (query: string) => route(parse(query));

describe('which one service answers a document whole', () => {
  it("sends an order's own fields, its lines' quantities and ids included, to the Order Service", () => {
    expect(routed('{ order(id: "1") { id status items { productId quantity unitPriceCents } } }')).toBe('orders');
    expect(routed('mutation($input: CreateOrderInput!) { createOrder(input: $input) { id __typename } }')).toBe('orders');
  });

  it('sends the catalog to the Inventory Service', () => {
    expect(routed('{ products(first: 2) { nodes { id name availableStock } pageInfo { hasNextPage } } }')).toBe('inventory');
    expect(routed('query { ...P } fragment P on Query { product(id: "1") { name } }')).toBe('inventory');
  });

  it("leaves an order's lines with their products to the planner: they join both services", () => {
    expect(routed('{ order(id: "1") { id items { quantity product { name } } } }')).toBeUndefined();
    expect(routed('{ order(id: "1") { id } products(first: 1) { nodes { id } } }')).toBeUndefined();
    expect(routed('{ order(id: "1") { items { ... on OrderLine { product { name } } } } }')).toBeUndefined();
  });

  it('judges every operation and fragment of the document, which the service validates whole, not only the one asked for', () => {
    expect(routed('query A { order(id: "1") { id } } query B { products(first: 1) { nodes { id } } }')).toBeUndefined();
    expect(routed('query A { order(id: "1") { id } } fragment Unused on Product { name }')).toBeUndefined();
  });

  it('asks no service for what none owns: the planner answers `{ __typename }` itself', () => {
    expect(routed('{ __typename }')).toBeUndefined();
  });

  it('walks each fragment once however often it is spread (fragments spreading fragments would otherwise cost K^depth)', () => {
    // 100 spreads at each of four levels: 10^8 walks without the memo, minutes; a few hundred with it.
    const spreads = (name: string) => Array.from({ length: 100 }, () => `...${name}`).join(' ');
    const query = `{ ${spreads('F1')} } fragment F1 on Query { ${spreads('F2')} } fragment F2 on Query { ${spreads('F3')} }
      fragment F3 on Query { ${spreads('F4')} } fragment F4 on Query { expiredOrderCount }`;
    expect(routed(query)).toBe('orders');
  }, 5_000);

  it('never sends introspection to a service, which would describe its own schema', () => {
    expect(routed('{ __schema { types { name } } }')).toBeUndefined();
    expect(routed('{ order(id: "1") { id } __type(name: "Order") { name } }')).toBeUndefined();
  });

  it('leaves a variable of an input type with a hidden field to the planner, which checks its value against the public graph', () => {
    const hiding = supergraph.replace('  idempotencyKey: String\n}', '  idempotencyKey: String\n  secret: String @inaccessible\n}');
    expect(hiding).not.toBe(supergraph);
    const hidingRoute = subgraphRouter(parse(hiding));
    const createOrder = 'mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }';
    expect(hidingRoute(parse(createOrder))).toBeUndefined();
    expect(hidingRoute(parse('{ order(id: "1") { id } }'))).toBe('orders');
  });

  it('leaves a variable of an input type both services define to the planner: merged, what one of them lacks is dropped unmarked', () => {
    const shared = supergraph.replace(
      'input OrderLineInput @join__type(graph: ORDERS) {',
      'input OrderLineInput @join__type(graph: INVENTORY) @join__type(graph: ORDERS) {',
    );
    expect(shared).not.toBe(supergraph);
    const sharedRoute = subgraphRouter(parse(shared));
    expect(sharedRoute(parse('mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }'))).toBeUndefined();
    expect(
      sharedRoute(parse('mutation($items: [OrderLineInput!]!) { createOrder(input: { customerId: "c", items: $items }) { id } }')),
    ).toBeUndefined();
  });
});
