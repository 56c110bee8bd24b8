import { getOperationAST, parse, validate, type GraphQLSchema } from 'graphql';
import { describe, expect, it } from 'vitest';
import { costLimit, operationCost } from '@stockflow/graphql';
import { serviceConfigShape } from '@stockflow/platform';
import { DASHBOARD_QUERY, RECENT } from '@stockflow/dashboard/queries';
import { inventorySchema } from '@stockflow/inventory';
import { ordersSchema } from '@stockflow/orders';
import { auditQueries } from '@stockflow/loadgen';
import { gatewaySchema, supergraphSchema } from './schemas.ts';

const defaultMaxCost = serviceConfigShape.GRAPHQL_MAX_COST.parse(undefined);

describe("the platform's own queries are within the services' default cost limit", () => {
  it.each<[string, GraphQLSchema, string, Record<string, unknown>]>([
    ["the audit's pages of orders", ordersSchema, auditQueries.orders(null), {}],
    ["the audit's pages of products and their ledgers", inventorySchema, auditQueries.products(null), {}],
  ])('%s', (_label, schema, query, variables) => {
    const document = parse(query);
    expect(validate(schema, document)).toEqual([]);
    expect(costLimit(schema, defaultMaxCost)(document, undefined, variables)).toBeUndefined();
  });
});

describe("the dashboard's one request to the gateway", () => {
  it("is valid on the graph its clients see, and within the gateway's default cost limit", () => {
    const document = parse(DASHBOARD_QUERY);
    expect(validate(gatewaySchema(), document)).toEqual([]);
    expect(costLimit(supergraphSchema(), defaultMaxCost)(document, undefined, { n: RECENT })).toBeUndefined();
  });
});

describe("the gateway's count of an operation", () => {
  // The supergraph keeps each list's most (@listSize): an operation one service serves costs the same at both.
  it.each<[string, GraphQLSchema, string, Record<string, unknown>]>([
    ["the audit's pages of orders (lines and payments: lists with a declared most)", ordersSchema, auditQueries.orders(null), {}],
    ["the audit's pages of products and their ledgers", inventorySchema, auditQueries.products(null), {}],
    ['order counts (a list of one item per status)', ordersSchema, '{ orderCounts { status count } }', {}],
  ])("is the service's: %s", (_label, schema, query, variables) => {
    const document = parse(query);
    const operation = getOperationAST(document);
    if (!operation) throw new Error('no operation');
    const gateway = operationCost(supergraphSchema(), document, operation, variables).cost;
    expect(gateway).toBe(operationCost(schema, document, operation, variables).cost);
  });
});
