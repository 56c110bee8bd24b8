import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase } from '@stockflow/db';
import { eventually, testServers } from '@stockflow/testing';
import { servicesUnavailable, startInventory, type InventoryHarness } from './harness.ts';

describe.skipIf(servicesUnavailable)('Inventory GraphQL API', () => {
  let h: InventoryHarness;
  beforeAll(async () => {
    h = await startInventory();
  });
  afterAll(async () => h?.close());

  const errorOf = async (query: string, variables?: Record<string, unknown>) => {
    const res = await h.gql.request(query, variables);
    expect(res.status).toBeLessThan(500);
    expect(res.errors?.length, JSON.stringify(res)).toBeGreaterThan(0);
    const [error] = res.errors ?? [];
    return { code: error?.extensions?.code, message: error?.message ?? '' };
  };

  it('creates a product and reads it back with ISO-8601 timestamps', async () => {
    const data = await h.gql.data<{ createProduct: Record<string, unknown> }>(
      'mutation { createProduct(input: {sku: "GQL-1", name: "  Lamp  ", priceCents: 2500, initialStock: 7}) { id sku name priceCents availableStock reservedStock soldStock updatedAt } }',
    );
    expect(data.createProduct).toMatchObject({
      sku: 'GQL-1',
      name: 'Lamp',
      priceCents: 2500,
      availableStock: 7,
      reservedStock: 0,
      soldStock: 0,
    });
    expect(data.createProduct.updatedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('refuses a duplicate SKU with CONFLICT', async () => {
    await h.createProduct('GQL-DUP', 1);
    const error = await errorOf('mutation { createProduct(input: {sku: "GQL-DUP", name: "again", initialStock: 1}) { id } }');
    expect(error).toEqual({ code: 'CONFLICT', message: 'a product with sku "GQL-DUP" already exists' });
  });

  it.each([
    ['a zero restock', 'mutation { restock(productId: "1", quantity: 0) { id } }', 'BAD_USER_INPUT', /quantity must be a positive/],
    ['a negative restock', 'mutation { restock(productId: "1", quantity: -5) { id } }', 'BAD_USER_INPUT', /quantity must be a positive/],
    [
      'a restock of an unknown product',
      'mutation { restock(productId: "987654", quantity: 5) { id } }',
      'NOT_FOUND',
      /product 987654 does not exist/,
    ],
    ['a non-numeric id', '{ product(id: "abc") { id } }', 'BAD_USER_INPUT', /id must be a product id/],
    [
      'a negative initial stock',
      'mutation { createProduct(input: {sku: "N1", name: "n", initialStock: -1}) { id } }',
      'BAD_USER_INPUT',
      /initialStock/,
    ],
    [
      'an empty name',
      'mutation { createProduct(input: {sku: "N2", name: "   ", initialStock: 1}) { id } }',
      'BAD_USER_INPUT',
      /name must not be empty/,
    ],
    [
      'an oversized name',
      `mutation { createProduct(input: {sku: "N3", name: "${'n'.repeat(201)}", initialStock: 1}) { id } }`,
      'BAD_USER_INPUT',
      /at most 200/,
    ],
    [
      'a SKU with spaces',
      'mutation { createProduct(input: {sku: "A B", name: "n", initialStock: 1}) { id } }',
      'BAD_USER_INPUT',
      /sku may contain only/,
    ],
    ['a page size over 500', '{ products(first: 501) { totalCount } }', 'BAD_USER_INPUT', /first must be between 0 and 500/],
    ['a forged cursor', '{ products(after: "nope") { totalCount } }', 'BAD_USER_INPUT', /not a cursor/],
    [
      'an Int overflow',
      'mutation { restock(productId: "1", quantity: 99999999999) { id } }',
      'GRAPHQL_VALIDATION_FAILED',
      /Int cannot represent/,
    ],
    ['an unknown field', '{ product(id: "1") { colour } }', 'GRAPHQL_VALIDATION_FAILED', /Cannot query field/],
    ['an adjustment of zero', 'mutation { adjustStock(productId: "1", delta: 0, reason: "x") { id } }', 'BAD_USER_INPUT', /non-zero/],
  ])('refuses %s with a coded error', async (_label, query, code, message) => {
    const error = await errorOf(query);
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
  });

  it('refuses more than 500 ids in one call', async () => {
    const ids = Array.from({ length: 501 }, (_, i) => String(i + 1));
    const error = await errorOf('query($ids: [ID!]) { products(ids: $ids) { totalCount } }', { ids });
    expect(error).toEqual({ code: 'BAD_USER_INPUT', message: 'ids accepts at most 500 ids' });
  });

  it('accepts 500 ids in one call', async () => {
    const ids = Array.from({ length: 500 }, (_, i) => String(i + 1));
    const res = await h.gql.request('query($ids: [ID!]) { products(ids: $ids, first: 500) { totalCount } }', { ids });
    expect(res.errors).toBeUndefined();
  });

  it('pages through products with cursors and filters by search and low stock', async () => {
    for (const [sku, stock] of [
      ['PAGE-RED-CHAIR', 3],
      ['PAGE-BLUE-CHAIR', 0],
      ['PAGE-RED-TABLE', 40],
    ] as const) {
      await h.createProduct(sku, stock);
    }
    type Page = { products: { totalCount: number; nodes: { sku: string }[]; pageInfo: { hasNextPage: boolean; endCursor: string } } };
    const first = await h.gql.data<Page>(
      '{ products(search: "page-", first: 2) { totalCount nodes { sku } pageInfo { hasNextPage endCursor } } }',
    );
    expect(first.products.totalCount).toBe(3);
    expect(first.products.nodes.map((n) => n.sku)).toEqual(['PAGE-RED-CHAIR', 'PAGE-BLUE-CHAIR']);
    expect(first.products.pageInfo.hasNextPage).toBe(true);
    const second = await h.gql.data<Page>(
      `{ products(search: "page-", first: 2, after: "${first.products.pageInfo.endCursor}") { totalCount nodes { sku } pageInfo { hasNextPage endCursor } } }`,
    );
    expect(second.products.nodes.map((n) => n.sku)).toEqual(['PAGE-RED-TABLE']);
    expect(second.products.pageInfo.hasNextPage).toBe(false);

    const low = await h.gql.data<Page>('{ products(search: "chair", availableAtMost: 5) { totalCount nodes { sku } } }');
    expect(low.products.nodes.map((n) => n.sku)).toEqual(['PAGE-RED-CHAIR', 'PAGE-BLUE-CHAIR']);
    const soldOut = await h.gql.data<Page>('{ products(search: "PAGE", inStock: false) { totalCount nodes { sku } } }');
    expect(soldOut.products.nodes.map((n) => n.sku)).toEqual(['PAGE-BLUE-CHAIR']);
  });

  it('records restocks and adjustments in the ledger, and refuses to adjust below zero', async () => {
    const id = await h.createProduct('LEDGER-GQL', 5);
    await h.gql.data(`mutation { restock(productId: "${id}", quantity: 10, note: "PO-778") { id } }`);
    await h.gql.data(`mutation { adjustStock(productId: "${id}", delta: -3, reason: "water damage") { id } }`);
    const tooMuch = await errorOf(`mutation { adjustStock(productId: "${id}", delta: -13, reason: "count") { id } }`);
    expect(tooMuch).toEqual({
      code: 'BAD_USER_INPUT',
      message: 'cannot remove 13 units: only 12 are available (reserved units belong to orders)',
    });

    const data = await h.gql.data<{ product: { availableStock: number; movements: { nodes: unknown[] } } }>(
      `{ product(id: "${id}") { availableStock movements { nodes { kind quantity availableChange availableAfter reason } } } }`,
    );
    expect(data.product.availableStock).toBe(12);
    expect(data.product.movements.nodes).toEqual([
      { kind: 'INITIAL', quantity: 5, availableChange: 5, availableAfter: 5, reason: null },
      { kind: 'RESTOCK', quantity: 10, availableChange: 10, availableAfter: 15, reason: 'PO-778' },
      { kind: 'ADJUSTMENT', quantity: 3, availableChange: -3, availableAfter: 12, reason: 'water damage' },
    ]);
  });

  it('updates product details and keeps what was left out', async () => {
    const id = await h.createProduct('UPD-1', 1);
    const data = await h.gql.data<{ updateProduct: Record<string, unknown> }>(
      `mutation { updateProduct(id: "${id}", input: {name: "Renamed", priceCents: null}) { sku name priceCents } }`,
    );
    expect(data.updateProduct).toEqual({ sku: 'UPD-1', name: 'Renamed', priceCents: null });
    expect((await errorOf('mutation { updateProduct(id: "999999", input: {name: "x"}) { id } }')).code).toBe('NOT_FOUND');
  });

  it('reports itself ready while its database answers, and not ready (503) while it does not', async () => {
    const ready = async () => {
      const res = await fetch(`http://127.0.0.1:${h.service.port}/ready`);
      return { code: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const health = async () => (await fetch(`http://127.0.0.1:${h.service.port}/health`)).status;
    expect(await ready()).toEqual({
      code: 200,
      body: {
        status: 'ready',
        checks: { database: 'up', broker: 'up', 'database circuit': 'up', 'broker circuit': 'up' },
        auth: 'DISABLED: every request has full access',
      },
    });
    expect(await health()).toBe(200);

    // The service's own database stops answering it: no new connection is allowed, the open ones are ended.
    const admin = createPostgresDatabase({ url: testServers.postgresAdminUrl, poolSize: 1, applicationName: 'ready-test' });
    const allowConnections = (allow: boolean) => admin.query(`ALTER DATABASE "${h.database.name}" ALLOW_CONNECTIONS ${allow}`);
    try {
      await allowConnections(false);
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [h.database.name]);
      const down = await eventually(ready, (r) => r.code !== 200);
      expect(down.code).toBe(503);
      expect(down.body).toMatchObject({ status: 'not ready', checks: { database: 'down', broker: 'up' } });
      // Alive all the same: restarting it would not bring the database back.
      expect(await health()).toBe(200);
    } finally {
      await allowConnections(true);
      await admin.close();
    }
    expect(await eventually(ready, (r) => r.code === 200 && (r.body as { status: string }).status === 'ready')).toMatchObject({
      body: { checks: { database: 'up', 'database circuit': 'up' } },
    });
  });
});
