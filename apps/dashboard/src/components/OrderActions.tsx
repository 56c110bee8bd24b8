import { useState } from 'react';
import { gql, newPaymentId, type Order, type Payment } from '../api.ts';
import { message } from '../format.ts';

/** `admin`: may fulfil and record payments (the Order Service lets only admins, or anyone with authentication off). */
export function OrderActions({ order, admin, onDone }: { order: Order; admin: boolean; onDone: (error?: string) => void }) {
  const [busy, setBusy] = useState(false);
  const act = async (run: () => Promise<string | undefined>) => {
    setBusy(true);
    try {
      onDone(await run());
    } catch (error) {
      onDone(message(error));
    } finally {
      setBusy(false);
    }
  };
  const change = (mutation: 'cancelOrder' | 'fulfillOrder') =>
    act(async () => {
      await gql(`mutation($id: ID!) { ${mutation}(id: $id) { id } }`, { id: order.id });
      return undefined;
    });
  // The order's own total and currency: anything else would be refunded rather than pay it.
  const pay = () =>
    act(async () => {
      const { recordPayment } = await gql<{ recordPayment: Payment }>(
        'mutation($input: RecordPaymentInput!) { recordPayment(input: $input) { paymentId amountCents currency outcome reason } }',
        { input: { orderId: order.id, paymentId: newPaymentId(), amountCents: order.totalCents, currency: order.currency } },
      );
      return recordPayment.outcome === 'PAID' ? undefined : `The payment was not kept, its refund is requested: ${recordPayment.reason}`;
    });
  const payable = order.status === 'CONFIRMED' && order.paymentDueAt !== null && order.totalCents !== null && order.currency !== null;
  // Without a due time a CONFIRMED order was confirmed with payments off, so it ships unpaid.
  // An order awaiting backordered stock is refused (AWAITING_STOCK) until it arrives.
  const fulfillable = !order.awaitingStock && (order.status === 'PAID' || (order.status === 'CONFIRMED' && order.paymentDueAt === null));
  return (
    <span className="actions">
      {admin && payable && (
        <button type="button" disabled={busy} onClick={() => void pay()}>
          Pay
        </button>
      )}
      {admin && fulfillable && (
        <button type="button" disabled={busy} onClick={() => void change('fulfillOrder')}>
          Fulfil
        </button>
      )}
      {(order.status === 'PENDING' || order.status === 'CONFIRMED' || order.status === 'PAID') && (
        <button type="button" disabled={busy} onClick={() => void change('cancelOrder')}>
          Cancel
        </button>
      )}
    </span>
  );
}
