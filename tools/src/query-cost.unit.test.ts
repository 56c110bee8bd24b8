import { parse, validate, type GraphQLSchema } from 'graphql';
import { describe, expect, it } from 'vitest';
import { costLimit, serviceConfigShape } from '@stockflow/platform';
import { DASHBOARD_QUERY, RECENT } from '../../apps/dashboard/src/queries.ts';
import { inventorySchema } from '../../services/inventory/src/graphql/schema.ts';
import { ordersSchema } from '../../services/orders/src/graphql/schema.ts';
import { auditQueries } from './audit.ts';
import { gatewaySchema } from './schemas.ts';

const defaultMaxCost = serviceConfigShape.GRAPHQL_MAX_COST.parse(undefined);

describe("the platform's own queries are within the services' default cost limit", () => {
  it.each<[string, GraphQLSchema, string, Record<string, unknown>]>([
    ["the audit's pages of orders", ordersSchema, auditQueries.orders(null), {}],
    ["the audit's pages of products and their ledgers", inventorySchema, auditQueries.products(null), {}],
    // Asked of the gateway. Costed on the whole graph, whose lists have lost the sizes their
    // services declare (each counts as the largest page): more than either service counts its share.
    ["the dashboard's catalog and orders, in one request to the gateway", gatewaySchema(), DASHBOARD_QUERY, { n: RECENT }],
  ])('%s', (_label, schema, query, variables) => {
    const document = parse(query);
    expect(validate(schema, document)).toEqual([]);
    expect(costLimit(schema, defaultMaxCost)(document, undefined, variables)).toBeUndefined();
  });
});
