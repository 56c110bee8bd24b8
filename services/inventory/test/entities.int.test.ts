import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger } from '@stockflow/observability';
import { createPostgresDatabase, type Database } from '@stockflow/db';
import type { RunningService } from '@stockflow/runtime';
import { createTestDatabase, graphqlClient, type GraphqlClient, type TestDatabase } from '@stockflow/testing';
import { loadInventoryConfig } from '../src/config.ts';
import { startInventoryService } from '../src/service.ts';
import { servicesUnavailable } from './harness.ts';

interface Statement {
  sql: string;
  params: unknown[] | undefined;
}

/** The real database, noting every statement the service sends it, in a transaction or not. */
function countingDatabase(real: Database, statements: Statement[]): Database {
  return {
    ...real,
    query: (sql, params) => {
      statements.push({ sql, params });
      return real.query(sql, params);
    },
    transaction: (fn) =>
      real.transaction((tx) =>
        fn({
          ...tx,
          query: (sql, params) => {
            statements.push({ sql, params });
            return tx.query(sql, params);
          },
        }),
      ),
  };
}

const ENTITIES = 'query($representations: [_Any!]!) { _entities(representations: $representations) { ... on Product { id sku } } }';

describe.skipIf(servicesUnavailable)('federation: the products another subgraph refers to (_entities)', () => {
  let database: TestDatabase;
  let db: Database;
  let service: RunningService;
  let gql: GraphqlClient;
  const statements: Statement[] = [];

  beforeAll(async () => {
    database = await createTestDatabase('inventory_entities');
    db = createPostgresDatabase({ url: database.url, poolSize: 4, applicationName: 'entities-test' });
    const config = loadInventoryConfig({
      DATABASE_URL: database.url,
      AMQP_URL: inject('amqpUrl'),
      PORT: '0',
      HOST: '127.0.0.1',
      AUTH_DISABLED: 'true',
    });
    service = await startInventoryService(config, createLogger({ name: 'inventory', level: process.env.TEST_LOG_LEVEL ?? 'silent' }), {
      db: countingDatabase(db, statements),
    });
    gql = graphqlClient(`http://127.0.0.1:${service.port}/graphql`);
  });
  afterAll(async () => {
    await service?.close();
    await db?.close();
    await database?.drop();
  });

  it('answers 50 representations (duplicates and missing ones among them) in their order, with one query of the products table', async () => {
    const products: { id: string; sku: string }[] = [];
    for (let i = 0; i < 40; i += 1) {
      const created = await gql.data<{ createProduct: { id: string; sku: string } }>(
        'mutation($input: CreateProductInput!) { createProduct(input: $input) { id sku } }',
        { input: { sku: `ENTITY-${i}`, name: `Referenced ${i}`, priceCents: 100, initialStock: 1 } },
      );
      products.push(created.createProduct);
    }
    const missing = ['900001', '900002', '900003', '900004', '900005'];
    // Out of id order, five products asked for twice (one of them three times), the missing ones spread among them.
    const ids = [
      ...products.slice(20).map((p) => p.id),
      missing[0],
      ...products.slice(0, 20).map((p) => p.id),
      products[3]?.id,
      missing[1],
      products[3]?.id,
      products[25]?.id,
      missing[2],
      missing[3],
      products[39]?.id,
      missing[4],
      products[0]?.id,
    ] as string[];
    expect(ids).toHaveLength(50);

    statements.length = 0;
    const data = await gql.data<{ _entities: ({ id: string; sku: string } | null)[] }>(ENTITIES, {
      representations: ids.map((id) => ({ __typename: 'Product', id })),
    });

    const byId = new Map(products.map((p) => [p.id, p]));
    expect(data._entities).toEqual(ids.map((id) => byId.get(id) ?? null));
    const productReads = statements.filter((s) => /\bproducts\b/.test(s.sql));
    expect(productReads.map((s) => s.sql)).toHaveLength(1);
    // Each product read once, the missing ones too.
    expect((productReads[0]?.params?.[0] as number[]).map(String).sort()).toEqual([...new Set(ids)].sort());
  });

  it("answers an answer's order lines with their products, a missing one as a null product, with one query of the products table", async () => {
    const products: { id: string; sku: string }[] = [];
    for (let i = 0; i < 3; i += 1) {
      const created = await gql.data<{ createProduct: { id: string; sku: string } }>(
        'mutation($input: CreateProductInput!) { createProduct(input: $input) { id sku } }',
        { input: { sku: `LINE-${i}`, name: `On a line ${i}`, initialStock: 1 } },
      );
      products.push(created.createProduct);
    }
    const ids = [products[2]?.id, '900009', products[0]?.id, products[1]?.id, products[0]?.id] as string[];

    statements.length = 0;
    const data = await gql.data<{ _entities: unknown[] }>(
      'query($representations: [_Any!]!) { _entities(representations: $representations) { ... on OrderLine { productId product { id sku } } } }',
      { representations: ids.map((productId) => ({ __typename: 'OrderLine', productId })) },
    );

    const byId = new Map(products.map((p) => [p.id, p]));
    expect(data._entities).toEqual(ids.map((productId) => ({ productId, product: byId.get(productId) ?? null })));
    const productReads = statements.filter((s) => /\bproducts\b/.test(s.sql));
    expect(productReads).toHaveLength(1);
  });
});
