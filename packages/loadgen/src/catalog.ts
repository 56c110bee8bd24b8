/** The catalog a load runs on: its products, stocked at one location or several, created once and reused. */
import type { GraphqlClient } from '@stockflow/client';
import { MAIN_LOCATION } from '@stockflow/contracts';
import type { LoadOptions } from './load.ts';

/** The codes of the first `count` locations the load generator stocks: MAIN, then LOC-2, LOC-3... */
const loadLocations = (count: number) => Array.from({ length: count }, (_, i) => (i === 0 ? MAIN_LOCATION : `LOC-${i + 1}`));

/** Creates the locations of `codes` that do not exist yet, each after the one before it in priority. */
async function ensureLocations(inventory: GraphqlClient, codes: readonly string[]) {
  const data = await inventory.data<{ stockLocations: { code: string }[] }>('{ stockLocations { code } }');
  const existing = new Set(data.stockLocations.map((l) => l.code));
  for (const [i, code] of codes.entries()) {
    if (existing.has(code)) continue;
    await inventory.data('mutation($input: CreateStockLocationInput!) { createStockLocation(input: $input) { id } }', {
      input: { code, name: `Load test location ${i + 1}`, priority: 100 + i },
    });
  }
}

/** How a product's units are spread over `locations`: one location in turn, or all of them evenly. */
export function stockAt(locations: readonly string[], index: number, units: number, spread: boolean): [string, number][] {
  if (!spread) return [[locations[index % locations.length] as string, units]];
  const base = Math.floor(units / locations.length);
  return locations.map((code, i) => [code, base + (i < units % locations.length ? 1 : 0)]);
}

/** Creates the products `LG-00000`... (or of another catalog) that do not exist yet; returns every id, hot ones first. */
export async function ensureCatalog(inventory: GraphqlClient, options: LoadOptions): Promise<{ all: number[]; hot: number[] }> {
  const prefix = `${options.catalog ?? 'LG'}-`;
  const skus = Array.from({ length: options.products }, (_, i) => `${prefix}${String(i).padStart(5, '0')}`);
  const existing = new Map<string, number>();
  let after: string | null = null;
  for (;;) {
    const data: { products: { nodes: { id: string; sku: string }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } } =
      await inventory.data(
        `{ products(search: "${prefix}", first: 500${after ? `, after: "${after}"` : ''}) { nodes { id sku } pageInfo { hasNextPage endCursor } } }`,
      );
    for (const p of data.products.nodes) existing.set(p.sku, Number(p.id));
    if (!data.products.pageInfo.hasNextPage) break;
    after = data.products.pageInfo.endCursor;
  }
  const missing = skus.filter((sku) => !existing.has(sku));
  const locations = loadLocations(options.locations ?? 1);
  if (missing.length > 0 && locations.length > 1) await ensureLocations(inventory, locations);
  for (let i = 0; i < missing.length; i += 20) {
    await Promise.all(
      missing.slice(i, i + 20).map(async (sku) => {
        const index = skus.indexOf(sku);
        const hot = index < options.hot;
        const spread = stockAt(locations, index, hot ? options.hotStock : options.stock, hot);
        const initialStock = spread.find(([code]) => code === MAIN_LOCATION)?.[1] ?? 0;
        const data = await inventory.data<{ createProduct: { id: string } }>(
          'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }',
          { input: { sku, name: `Load test product ${index}`, priceCents: 1_000 + index, initialStock } },
        );
        for (const [locationCode, quantity] of spread) {
          if (locationCode === MAIN_LOCATION || quantity === 0) continue;
          await inventory.data(
            'mutation($id: ID!, $quantity: Int!, $at: String!) { restock(productId: $id, quantity: $quantity, locationCode: $at) { id } }',
            {
              id: data.createProduct.id,
              quantity,
              at: locationCode,
            },
          );
        }
        existing.set(sku, Number(data.createProduct.id));
      }),
    );
  }
  const all = skus.map((sku) => existing.get(sku) as number);
  return { all, hot: all.slice(0, options.hot) };
}
