import type { GraphqlClient } from '@stockflow/client';

/** Its orders in these statuses still hold stock (or may yet), and are cancelled at the end. */
const HOLDING_STOCK = ['PENDING', 'CONFIRMED', 'PAID'] as const;
const HOLDING =
  'query($customerId: ID!, $status: OrderStatus, $first: Int) { orders(customerId: $customerId, status: $status, first: $first) { nodes { id } } }';
const CANCEL = 'mutation($id: ID!, $reason: String) { cancelOrder(id: $id, reason: $reason) { id } }';
const CANCEL_PAGE = 100;

/**
 * Cancels its orders that still hold stock, as their customer would (a paid one's payment is
 * asked back). Found by its customer, not by the ids it knows: an order whose createOrder answer
 * was lost is its own too. An order moving on meanwhile (PENDING to CONFIRMED, CONFIRMED to PAID)
 * is met in the next status's pass.
 */
export async function cancelHolding(
  api: GraphqlClient,
  customerId: string,
  problems: string[],
  log: (line: string) => void,
): Promise<string[]> {
  const cancelled = new Set<string>();
  try {
    for (const status of HOLDING_STOCK) {
      for (;;) {
        const { nodes } = (await api.data<{ orders: { nodes: { id: string }[] } }>(HOLDING, { customerId, status, first: CANCEL_PAGE }))
          .orders;
        const fresh = nodes.filter((o) => !cancelled.has(o.id));
        for (const o of fresh) {
          await api.data(CANCEL, { id: o.id, reason: 'payment simulation over (npm run simulate -- payments)' });
          cancelled.add(o.id);
        }
        if (fresh.length === 0 || nodes.length < CANCEL_PAGE) break;
      }
    }
  } catch (error) {
    problems.push(`could not cancel its orders still holding stock (${cancelled.size} cancelled): ${(error as Error).message}`);
  }
  if (cancelled.size > 0) log(`cancelled ${cancelled.size} of its orders still holding stock`);
  return [...cancelled];
}
