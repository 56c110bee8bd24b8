import type { Queryable } from '@stockflow/db';
import type { OrderStatus } from '../domain/order.ts';

/** Channel of the NOTIFY sent on every status change; every instance LISTENs to it. */
export const ORDER_STATUS_CHANNEL = 'order_status';

export interface StatusChange {
  id: string;
  customerId: string;
  status: OrderStatus;
  /**
   * Not a status change: the order's last backordered units arrived (awaitingStock turned false).
   * Only orderStatusChanged, which follows one order to its fulfilment, sends it on.
   */
  stockArrived?: true;
}

/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more. */
const NOTIFY_PAYLOAD_BYTES = 7_000;

/** Status changes grouped into as few NOTIFY payloads (JSON arrays) as the size limit allows. */
export function notifyPayloads(changes: StatusChange[]): string[] {
  const payloads: string[] = [];
  let group: string[] = [];
  let size = 2;
  for (const change of changes) {
    const json = JSON.stringify(change);
    const bytes = Buffer.byteLength(json) + 1;
    if (group.length > 0 && size + bytes > NOTIFY_PAYLOAD_BYTES) {
      payloads.push(`[${group.join(',')}]`);
      group = [];
      size = 2;
    }
    group.push(json);
    size += bytes;
  }
  if (group.length > 0) payloads.push(`[${group.join(',')}]`);
  return payloads;
}

/** Notifies every instance of these changes when the transaction commits (NOTIFY is transactional). */
export async function notifyStatusChanges(tx: Queryable, changes: StatusChange[]): Promise<void> {
  await tx.query(`SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, [ORDER_STATUS_CHANNEL, notifyPayloads(changes)]);
}
