/**
 * The stock and money audit: after any run (a test, a fault scenario, a load test), the platform's
 * two GraphQL APIs must tell one consistent story. Used by the fault-injection suite, the load
 * generator and the bench.
 */
import { graphqlClient, type GraphqlClient } from '@stockflow/client';

export type AuditedStatus = 'PENDING' | 'CONFIRMED' | 'PAID' | 'CANCELLED' | 'FULFILLED';

export interface AuditReport {
  ok: boolean;
  problems: string[];
  orders: Record<AuditedStatus, number>;
  products: number;
  /** Payment attempts on the orders, by outcome. */
  payments: Record<'PAID' | 'FAILED' | 'REFUND_REQUESTED', number>;
}

export interface AuditedOrder {
  id: string;
  status: AuditedStatus;
  items: { productId: string; quantity: number }[];
  totalCents: number | null;
  currency: string | null;
  paidAt: string | null;
  payments: { paymentId: string; amountCents: number | null; currency: string | null; outcome: keyof AuditReport['payments'] }[];
}

export interface AuditedProduct {
  id: string;
  availableStock: number;
  reservedStock: number;
  soldStock: number;
  backorderLimit: number;
  backorderedStock: number;
  stockLevels: { location: { code: string }; available: number; reserved: number; sold: number }[];
  movements: { totalCount: number; nodes: { availableChange: number; locationCode: string }[] };
}

const PAGE = 500;
/** Orders a page: with their lines and payments, a page stays within the cost limit. */
const ORDER_PAGE = 200;
const PRODUCT_PAGE = 50;
/** Orders named per kind of problem: a broken run can have thousands. */
const EXAMPLES = 5;

const afterArg = (after: string | null) => (after ? `, after: "${after}"` : '');

/**
 * The pages the audit reads. Each stays within the services' default query cost limit
 * (GRAPHQL_MAX_COST, which multiplies a list's cost by its `first`); audit.unit.test.ts checks it.
 */
export const auditQueries = {
  orders: (after: string | null) =>
    `{ orders(first: ${ORDER_PAGE}${afterArg(after)}) { nodes { id status totalCents currency paidAt items { productId quantity }
       payments { paymentId amountCents currency outcome } } pageInfo { hasNextPage endCursor } } }`,
  // 50 products a page: with 500 ledger rows each (change and location) and their stock levels, a
  // page stays within the cost limit.
  products: (after: string | null) =>
    `{ products(first: ${PRODUCT_PAGE}${afterArg(after)}) { nodes { id availableStock reservedStock soldStock backorderLimit backorderedStock
       stockLevels { location { code } available reserved sold }
       movements(kinds: [INITIAL, RESTOCK, ADJUSTMENT, TRANSFER], first: ${PAGE}) { totalCount nodes { availableChange locationCode } } }
       pageInfo { hasNextPage endCursor } } }`,
};

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

/**
 * Reads every order and every product and checks them (see auditBooks).
 */
export async function auditPlatform(urls: { orders: string; inventory: string; token?: string | undefined }): Promise<AuditReport> {
  const orders = graphqlClient(urls.orders, { token: urls.token });
  const inventory = graphqlClient(urls.inventory, { token: urls.token });
  const orderRows = await allPages<AuditedOrder>(orders, 'orders', auditQueries.orders);
  const productRows = await allPages<AuditedProduct>(inventory, 'products', auditQueries.products);
  return auditBooks(orderRows, productRows);
}

/**
 * The checks. Stock: no order is stuck PENDING; for each product, reserved plus backordered equals
 * the units of its CONFIRMED and PAID orders (both hold their units, on hand or promised), sold
 * equals the units of its FULFILLED orders, available + reserved + sold equals what was received
 * (initial stock, restocks and adjustments in the ledger), backordered stays within the product's
 * limit, and no counter is negative; and the same at each location: available + reserved + sold
 * equals what that location received (transfers in and out counted), nothing negative, and the
 * locations' counters add up to the product's. Money: an
 * order keeps money (payments
 * PAID) only when it went through: a PAID order, or a FULFILLED one that was paid (paidAt), keeps
 * exactly its total in its currency; any other order (CONFIRMED, PENDING, CANCELLED, FULFILLED
 * with payments off) keeps none, so a cancelled order's money is all asked back; and every refund
 * request (REFUND_REQUESTED) names the amount to give back.
 */
export function auditBooks(orderRows: readonly AuditedOrder[], productRows: readonly AuditedProduct[]): AuditReport {
  const problems: string[] = [];
  const counts: AuditReport['orders'] = { PENDING: 0, CONFIRMED: 0, PAID: 0, CANCELLED: 0, FULFILLED: 0 };
  const payments: AuditReport['payments'] = { PAID: 0, FAILED: 0, REFUND_REQUESTED: 0 };
  const held = new Map<string, number>();
  const sold = new Map<string, number>();
  const money = { short: [] as string[], kept: [] as string[], noPaidAt: [] as string[], noAmount: [] as string[] };
  for (const order of orderRows) {
    counts[order.status] += 1;
    const into = order.status === 'CONFIRMED' || order.status === 'PAID' ? held : order.status === 'FULFILLED' ? sold : undefined;
    for (const line of into ? order.items : []) into?.set(line.productId, (into.get(line.productId) ?? 0) + line.quantity);

    const paid = order.payments.filter((p) => p.outcome === 'PAID');
    for (const p of order.payments) payments[p.outcome] += 1;
    const wentThrough = order.status === 'PAID' || (order.status === 'FULFILLED' && order.paidAt !== null);
    if (order.status === 'PAID' && order.paidAt === null) money.noPaidAt.push(order.id);
    if (wentThrough) {
      const sum = paid.reduce((total, p) => total + (p.amountCents ?? 0), 0);
      const currencies = new Set(paid.map((p) => p.currency));
      const exact = order.totalCents !== null && sum === order.totalCents && currencies.size === 1 && currencies.has(order.currency);
      if (!exact)
        money.short.push(`${order.id} (${order.status}: ${sum} paid of ${order.totalCents ?? 'no total'} ${order.currency ?? ''})`);
    } else if (paid.length > 0) {
      money.kept.push(`${order.id} (${order.status}: ${paid.map((p) => p.paymentId).join(', ')})`);
    }
    for (const p of order.payments) {
      if (p.outcome === 'REFUND_REQUESTED' && (p.amountCents === null || p.currency === null))
        money.noAmount.push(`${p.paymentId} of ${order.id}`);
    }
  }
  if (counts.PENDING > 0) {
    const stuck = orderRows.filter((o) => o.status === 'PENDING').map((o) => o.id);
    problems.push(`${counts.PENDING} orders stuck PENDING (e.g. ${stuck.slice(0, EXAMPLES).join(', ')})`);
  }
  const report = (list: string[], what: string) => {
    if (list.length > 0) problems.push(`${list.length} ${what} (e.g. ${list.slice(0, EXAMPLES).join('; ')})`);
  };
  report(money.short, 'paid orders whose PAID payments do not add up to exactly their total');
  report(money.kept, 'orders that did not go through yet keep a PAID payment (its money is neither earned nor asked back)');
  report(money.noPaidAt, 'PAID orders without paidAt');
  report(money.noAmount, 'refund requests without an amount to give back');

  for (const p of productRows) {
    const expectedReserved = held.get(p.id) ?? 0;
    const expectedSold = sold.get(p.id) ?? 0;
    // A backordered unit is held by its order without being on hand: reserved does not count it.
    if (p.reservedStock + p.backorderedStock !== expectedReserved) {
      const backordered = p.backorderedStock > 0 ? ` (and ${p.backorderedStock} backordered)` : '';
      problems.push(
        `product ${p.id}: reserved ${p.reservedStock}${backordered}, but its CONFIRMED and PAID orders hold ${expectedReserved}`,
      );
    }
    if (p.backorderedStock > p.backorderLimit) {
      problems.push(`product ${p.id}: ${p.backorderedStock} backordered, above its limit of ${p.backorderLimit}`);
    }
    if (p.soldStock !== expectedSold) problems.push(`product ${p.id}: sold ${p.soldStock}, but its FULFILLED orders took ${expectedSold}`);
    if (p.movements.totalCount > p.movements.nodes.length) {
      problems.push(`product ${p.id}: more than ${PAGE} receipts in the ledger; the audit cannot total them`);
    }
    const received = p.movements.nodes.reduce((sum, m) => sum + m.availableChange, 0);
    const onBooks = p.availableStock + p.reservedStock + p.soldStock;
    if (onBooks !== received) problems.push(`product ${p.id}: available + reserved + sold = ${onBooks}, but ${received} were received`);
    if (p.availableStock < 0 || p.reservedStock < 0 || p.soldStock < 0 || p.backorderedStock < 0) {
      problems.push(`product ${p.id}: a negative counter`);
    }
    // The sums above could balance while one location oversold and another kept the units it lost.
    const receivedAt = new Map<string, number>();
    for (const m of p.movements.nodes) receivedAt.set(m.locationCode, (receivedAt.get(m.locationCode) ?? 0) + m.availableChange);
    for (const level of p.stockLevels) {
      const at = level.location.code;
      const there = level.available + level.reserved + level.sold;
      if (there !== (receivedAt.get(at) ?? 0)) {
        problems.push(
          `product ${p.id} at ${at}: available + reserved + sold = ${there}, but ${receivedAt.get(at) ?? 0} were received there`,
        );
      }
      if (level.available < 0 || level.reserved < 0 || level.sold < 0) problems.push(`product ${p.id} at ${at}: a negative counter`);
      receivedAt.delete(at);
    }
    for (const [at, units] of receivedAt) {
      if (units !== 0) problems.push(`product ${p.id}: ${units} units received at ${at}, which shows no stock level`);
    }
    const sum = (field: 'available' | 'reserved' | 'sold') => p.stockLevels.reduce((total, level) => total + level[field], 0);
    if (sum('available') !== p.availableStock || sum('reserved') !== p.reservedStock || sum('sold') !== p.soldStock) {
      problems.push(
        `product ${p.id}: its locations hold ${sum('available')}/${sum('reserved')}/${sum('sold')} available/reserved/sold, ` +
          `but the product ${p.availableStock}/${p.reservedStock}/${p.soldStock}`,
      );
    }
  }
  const known = new Set(productRows.map((p) => p.id));
  for (const id of new Set([...held.keys(), ...sold.keys()])) {
    if (!known.has(id)) problems.push(`orders hold product ${id}, which inventory does not know`);
  }
  return { ok: problems.length === 0, problems, orders: counts, products: productRows.length, payments };
}
