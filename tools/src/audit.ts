/**
 * The stock audit: after any run (a test, a fault scenario, a load test), the platform's two
 * GraphQL APIs must tell one consistent story. Used by the fault-injection suite and the load
 * generator.
 */
import { graphqlClient, type GraphqlClient } from '@stockflow/platform';

export interface AuditReport {
  ok: boolean;
  problems: string[];
  orders: Record<'PENDING' | 'CONFIRMED' | 'CANCELLED' | 'FULFILLED', number>;
  products: number;
}

interface OrderRow {
  id: string;
  status: keyof AuditReport['orders'];
  items: { productId: string; quantity: number }[];
}

interface ProductRow {
  id: string;
  availableStock: number;
  reservedStock: number;
  soldStock: number;
  movements: { totalCount: number; nodes: { availableChange: number }[] };
}

const PAGE = 500;
const PRODUCT_PAGE = 100;

async function allPages<T>(client: GraphqlClient, field: string, query: (after: string | null) => string): Promise<T[]> {
  const rows: T[] = [];
  let after: string | null = null;
  for (;;) {
    const data: Record<string, { nodes: T[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } }> = await client.data(
      query(after),
    );
    const page = data[field];
    if (!page) throw new Error(`audit: no ${field} in the response`);
    rows.push(...page.nodes);
    if (!page.pageInfo.hasNextPage) return rows;
    after = page.pageInfo.endCursor;
  }
}

const afterArg = (after: string | null) => (after ? `, after: "${after}"` : '');

/** The pages the audit reads; query-cost.unit.test.ts holds them to the services' default cost limit. */
export const auditPages = {
  orders: (after: string | null) =>
    `{ orders(first: ${PAGE}${afterArg(after)}) { nodes { id status items { productId quantity } } pageInfo { hasNextPage endCursor } } }`,
  // 100 products a page: with 500 ledger rows each, a page stays within the APIs' cost limit.
  products: (after: string | null) =>
    `{ products(first: ${PRODUCT_PAGE}${afterArg(after)}) { nodes { id availableStock reservedStock soldStock
       movements(kinds: [INITIAL, RESTOCK, ADJUSTMENT], first: ${PAGE}) { totalCount nodes { availableChange } } }
       pageInfo { hasNextPage endCursor } } }`,
};

/**
 * Reads every order and every product and checks: no order is stuck PENDING; for each product,
 * reserved equals the units of its CONFIRMED orders, sold equals the units of its FULFILLED
 * orders, available + reserved + sold equals what was received (initial stock, restocks and
 * adjustments in the ledger), and no counter is negative.
 */
export async function auditPlatform(urls: { orders: string; inventory: string; token?: string | undefined }): Promise<AuditReport> {
  const orders = graphqlClient(urls.orders, { token: urls.token });
  const inventory = graphqlClient(urls.inventory, { token: urls.token });
  const problems: string[] = [];

  const orderRows = await allPages<OrderRow>(orders, 'orders', auditPages.orders);
  const productRows = await allPages<ProductRow>(inventory, 'products', auditPages.products);

  const counts: AuditReport['orders'] = { PENDING: 0, CONFIRMED: 0, CANCELLED: 0, FULFILLED: 0 };
  const held = new Map<string, number>();
  const sold = new Map<string, number>();
  for (const order of orderRows) {
    counts[order.status] += 1;
    const into = order.status === 'CONFIRMED' ? held : order.status === 'FULFILLED' ? sold : undefined;
    for (const line of into ? order.items : []) into?.set(line.productId, (into.get(line.productId) ?? 0) + line.quantity);
  }
  if (counts.PENDING > 0) {
    const stuck = orderRows.filter((o) => o.status === 'PENDING').map((o) => o.id);
    problems.push(`${counts.PENDING} orders stuck PENDING (e.g. ${stuck.slice(0, 5).join(', ')})`);
  }

  for (const p of productRows) {
    const expectedReserved = held.get(p.id) ?? 0;
    const expectedSold = sold.get(p.id) ?? 0;
    if (p.reservedStock !== expectedReserved) {
      problems.push(`product ${p.id}: reserved ${p.reservedStock}, but its CONFIRMED orders hold ${expectedReserved}`);
    }
    if (p.soldStock !== expectedSold) problems.push(`product ${p.id}: sold ${p.soldStock}, but its FULFILLED orders took ${expectedSold}`);
    if (p.movements.totalCount > p.movements.nodes.length) {
      problems.push(`product ${p.id}: more than ${PAGE} receipts in the ledger; the audit cannot total them`);
    }
    const received = p.movements.nodes.reduce((sum, m) => sum + m.availableChange, 0);
    const onBooks = p.availableStock + p.reservedStock + p.soldStock;
    if (onBooks !== received) problems.push(`product ${p.id}: available + reserved + sold = ${onBooks}, but ${received} were received`);
    if (p.availableStock < 0 || p.reservedStock < 0 || p.soldStock < 0) problems.push(`product ${p.id}: a negative counter`);
  }
  const known = new Set(productRows.map((p) => p.id));
  for (const id of new Set([...held.keys(), ...sold.keys()])) {
    if (!known.has(id)) problems.push(`orders hold product ${id}, which inventory does not know`);
  }
  return { ok: problems.length === 0, problems, orders: counts, products: productRows.length };
}
