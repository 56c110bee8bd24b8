/**
 * The queries the page polls, apart from the browser code that sends them so that a test
 * (tools/src/query-cost.unit.test.ts) can hold them to the services' cost limit.
 */

export const ORDER_FIELDS =
  'id customerId status reason items { productId quantity } totalCents currency paymentDueAt paidAt payments { paymentId amountCents currency outcome reason } createdAt updatedAt';

/** How many recent orders the page lists. */
export const RECENT = 15;

export const CATALOG_QUERY = '{ products(first: 100) { nodes { id sku name availableStock reservedStock soldStock } } }';

/** With `{ n: RECENT }`. */
export const ORDERS_QUERY = `query($n: Int) { orderCounts { status count } expiredOrderCount recentOrders(first: $n) { ${ORDER_FIELDS} } }`;
