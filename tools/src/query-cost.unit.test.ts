import { parse, validate, type GraphQLSchema } from 'graphql';
import { describe, expect, it } from 'vitest';
import { costLimit, serviceConfigShape } from '@stockflow/platform';
import { CATALOG_QUERY, ORDERS_QUERY, RECENT } from '../../apps/dashboard/src/queries.ts';
import { inventorySchema } from '../../services/inventory/src/graphql/schema.ts';
import { ordersSchema } from '../../services/orders/src/graphql/schema.ts';
import { auditQueries } from './audit.ts';

const defaultMaxCost = serviceConfigShape.GRAPHQL_MAX_COST.parse(undefined);

describe("the platform's own queries are within the services' default cost limit", () => {
  it.each<[string, GraphQLSchema, string, Record<string, unknown>]>([
    ["the audit's pages of orders", ordersSchema, auditQueries.orders(null), {}],
    ["the audit's pages of products and their ledgers", inventorySchema, auditQueries.products(null), {}],
    ["the dashboard's catalog", inventorySchema, CATALOG_QUERY, {}],
    ["the dashboard's orders", ordersSchema, ORDERS_QUERY, { n: RECENT }],
  ])('%s', (_label, schema, query, variables) => {
    const document = parse(query);
    expect(validate(schema, document)).toEqual([]);
    expect(costLimit(schema, defaultMaxCost)(document, undefined, variables)).toBeUndefined();
  });
});
