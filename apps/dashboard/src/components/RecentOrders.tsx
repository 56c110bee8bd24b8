import { useState } from 'react';
import type { Order } from '../api.ts';
import { money } from '../format.ts';
import { paymentState } from '../payment-state.ts';
import { OrderActions } from './OrderActions.tsx';

export function RecentOrders({
  orders,
  placed,
  admin,
  onChanged,
}: {
  orders: Order[];
  placed: string | null;
  admin: boolean;
  onChanged: () => void;
}) {
  const [error, setError] = useState<string | null>(null);
  return (
    <section aria-labelledby="recent-title">
      <h2 id="recent-title">Recent orders</h2>
      {error && <p role="alert">{error}</p>}
      <ol className="orders" aria-live="polite">
        {orders.map((o) => {
          const payment = paymentState(o);
          return (
            <li key={o.id} className={o.id === placed ? 'placed' : undefined} data-order={o.id}>
              <span className={`status ${o.status.toLowerCase()}`} data-field="status">
                {o.status}
              </span>{' '}
              {o.awaitingStock && (
                <span className="badge" data-field="awaiting-stock">
                  awaiting stock
                </span>
              )}{' '}
              <code>{o.id.slice(0, 12)}…</code> {o.customerId}:{' '}
              <span data-field="items">{o.items.map((i) => `${i.quantity} × ${i.product?.name ?? `#${i.productId}`}`).join(', ')}</span>
              {o.totalCents !== null && o.currency && (
                <>
                  {' '}
                  · <span data-field="total">{money(o.totalCents, o.currency)}</span>
                </>
              )}
              {payment && (
                <>
                  {' '}
                  ·{' '}
                  <span className={payment.tone} data-field="payment" title={o.paymentDueAt ?? undefined}>
                    {payment.text}
                  </span>
                </>
              )}
              {o.reason && <span className="muted"> ({o.reason})</span>}{' '}
              <OrderActions
                order={o}
                admin={admin}
                onDone={(err) => {
                  setError(err ?? null);
                  onChanged();
                }}
              />
            </li>
          );
        })}
      </ol>
    </section>
  );
}
