import { useCallback, useEffect, useRef, useState } from 'react';
import {
  fetchStatus,
  gql,
  session,
  subscribe,
  type Order,
  type OrderStatus,
  type Product,
  type RefundRequest,
  type Status,
} from './api.ts';
import { Catalog } from './components/Catalog.tsx';
import { FlowChart, HISTORY } from './components/FlowChart.tsx';
import { Health } from './components/Health.tsx';
import { PlaceOrder } from './components/PlaceOrder.tsx';
import { RecentOrders } from './components/RecentOrders.tsx';
import { Refunds } from './components/Refunds.tsx';
import { Rehearsal } from './components/Rehearsal.tsx';
import { SignIn } from './components/SignIn.tsx';
import { message } from './format.ts';
import { DASHBOARD_QUERY, ORDER_FIELDS, RECENT } from './queries.ts';
import { POLL_MS, usePoll } from './use-poll.ts';

const STATUSES: OrderStatus[] = ['PENDING', 'CONFIRMED', 'PAID', 'FULFILLED', 'CANCELLED'];

export function App() {
  const [, setSession] = useState(0);
  const [status, setStatus] = useState<Status | null>(null);
  const [counts, setCounts] = useState<Record<OrderStatus, number> | null>(null);
  const [expiredCount, setExpiredCount] = useState<number | null>(null);
  const [products, setProducts] = useState<Product[]>([]);
  const [catalogError, setCatalogError] = useState<string | null>(null);
  const [recent, setRecent] = useState<Order[]>([]);
  const [refunds, setRefunds] = useState<RefundRequest[]>([]);
  const [placed, setPlaced] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [history, setHistory] = useState<[number[], number[], number[]]>([[], [], []]);
  const last = useRef<Status | null>(null);
  const signedIn = status?.auth !== 'jwt' || session.identity !== null;
  const identity = session.identity;
  const admin = status?.auth !== 'jwt' || identity?.role === 'admin';
  const sessionKey = session.token ?? '';
  // The Order Service does not say whether it takes payments; an order with a due time, or one paid or expired, shows it does.
  const paymentsOn = recent.some((o) => o.paymentDueAt !== null) || (counts?.PAID ?? 0) > 0 || (expiredCount ?? 0) > 0;

  usePoll(
    async () => {
      const next = await fetchStatus();
      setStatus(next);
      const prev = last.current;
      last.current = next;
      const [now, before] = [next.decisions, prev?.decisions];
      if (!prev || !now || !before) return;
      const seconds = (next.at - prev.at) / 1000;
      const rate = (a: number, b: number) => Math.max(0, (a - b) / seconds);
      setHistory(([t, ok, bad]) => [
        [...t, next.at / 1000].slice(-HISTORY),
        [...ok, rate(now.reserved, before.reserved)].slice(-HISTORY),
        [...bad, rate(now.rejected, before.rejected)].slice(-HISTORY),
      ]);
    },
    POLL_MS,
    // Asked again at once on signing in or out: how much of it is shown depends on the token.
    [sessionKey],
  );

  const refresh = useCallback(async () => {
    if (!signedIn) return;
    try {
      const data = await gql<{
        products: { nodes: Product[] };
        orderCounts: { status: OrderStatus; count: number }[];
        expiredOrderCount: number;
        recentOrders: Order[];
        refundRequests: RefundRequest[];
      }>(DASHBOARD_QUERY, { n: RECENT });
      setProducts(data.products.nodes);
      setCatalogError(null);
      setCounts(Object.fromEntries(data.orderCounts.map((c) => [c.status, c.count])) as Record<OrderStatus, number>);
      setExpiredCount(data.expiredOrderCount);
      setRecent(data.recentOrders);
      setRefunds(data.refundRequests);
    } catch (error) {
      setCatalogError(message(error));
    }
  }, [signedIn]);
  usePoll(refresh, POLL_MS, [refresh, sessionKey]);

  // Status changes as they happen: every order for an admin, its own for a customer, none for any other role.
  useEffect(() => {
    const own = identity?.role === 'customer' ? identity.sub : null;
    if (!signedIn || !status || !(admin || own)) return;
    const query = own
      ? `subscription($c: ID!) { change: customerOrderStatusChanged(customerId: $c) { ${ORDER_FIELDS} } }`
      : `subscription { change: orderStatusChanges { ${ORDER_FIELDS} } }`;
    return subscribe<{ change: Order }>(query, own ? { c: own } : {}, ({ change }) =>
      setRecent((list) =>
        [change, ...list.filter((o) => o.id !== change.id)].sort((a, b) => b.createdAt.localeCompare(a.createdAt)).slice(0, RECENT),
      ),
    );
  }, [signedIn, sessionKey, status === null]);

  return (
    <>
      <header>
        <h1>Stockflow operations</h1>
        <SignIn auth={status?.auth} onChange={() => setSession((n) => n + 1)} />
      </header>
      <main>
        <section aria-labelledby="flow-title" className="wide">
          <h2 id="flow-title">Order flow</h2>
          <Health status={status} />
          <dl className="tiles">
            {STATUSES.map((s) => (
              <div key={s} className={`tile ${s.toLowerCase()}`}>
                <dt>
                  {s}
                  {s === 'CONFIRMED' && paymentsOn && <span className="hint">awaiting payment</span>}
                </dt>
                <dd data-count={s}>{counts ? counts[s] : '…'}</dd>
              </div>
            ))}
            <div className="tile expired">
              <dt>
                EXPIRED<span className="hint">cancelled unpaid</span>
              </dt>
              <dd data-count="EXPIRED">{expiredCount ?? '…'}</dd>
            </div>
          </dl>
          <FlowChart history={history} />
        </section>
        {notice && (
          <p role="alert" className="wide">
            {notice}
          </p>
        )}
        {signedIn ? (
          <>
            <PlaceOrder
              products={products}
              onPlaced={(order) => {
                setPlaced(order.id);
                setRecent((list) => [order, ...list.filter((o) => o.id !== order.id)].slice(0, RECENT));
              }}
            />
            <RecentOrders orders={recent} placed={placed} admin={admin} onChanged={() => void refresh()} />
            <Refunds refunds={refunds} status={status} />
            <Catalog products={products} error={catalogError} />
            <Rehearsal onError={setNotice} />
          </>
        ) : (
          <p className="wide">Sign in with a token to see the catalog and the orders.</p>
        )}
      </main>
    </>
  );
}
