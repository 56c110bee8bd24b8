/**
 * The queries the page polls, apart from the browser code that sends them so that a test
 * (tools/src/query-cost.unit.test.ts) can hold them to the services' cost limit.
 */

export const ORDER_FIELDS =
  'id customerId status reason awaitingStock items { productId quantity backorderedQuantity product { name } } totalCents currency paymentDueAt paidAt payments { paymentId amountCents currency outcome reason } createdAt updatedAt';

/** How many recent orders the page lists. */
export const RECENT = 15;

/** How many of the latest refunds asked for the page lists. */
export const REFUNDS = 10;

/** What the page polls, in one request to the gateway (the catalog from one service, the orders from the other); with `{ n: RECENT }`. */
export const DASHBOARD_QUERY = `query($n: Int) {
  products(first: 100) { nodes { id sku name availableStock reservedStock soldStock backorderedStock stockLevels { location { code } available } } }
  orderCounts { status count } expiredOrderCount recentOrders(first: $n) { ${ORDER_FIELDS} }
  refundRequests(first: ${REFUNDS}) { paymentId orderId amountCents currency outcome reason updatedAt }
}`;
