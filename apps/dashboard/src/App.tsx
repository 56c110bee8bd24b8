import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import {
  ApiError,
  expired,
  fetchRehearsal,
  fetchStatus,
  gql,
  newPaymentId,
  session,
  startRehearsal,
  subscribe,
  type Order,
  type OrderStatus,
  type Payment,
  type Product,
  type RefundRequest,
  type RehearsalState,
  type Status,
} from './api.ts';
import { DASHBOARD_QUERY, ORDER_FIELDS, RECENT } from './queries.ts';

const POLL_MS = 2_000;
/** Points of the throughput chart: the last five minutes at one point per poll. */
const HISTORY = (5 * 60_000) / POLL_MS;
const STATUSES: OrderStatus[] = ['PENDING', 'CONFIRMED', 'PAID', 'FULFILLED', 'CANCELLED'];

const lowStock = (p: Product) => p.availableStock <= Math.max(5, Math.floor(0.1 * (p.availableStock + p.reservedStock + p.soldStock)));
const message = (error: unknown) =>
  error instanceof ApiError && error.code ? `${error.message} (${error.code})` : (error as Error).message;
const money = (cents: number, currency: string) => new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(cents / 100);
const clock = (iso: string) => new Date(iso).toLocaleTimeString();

/** Where an order stands with its payment; null where payment plays no part (not confirmed yet, or payments off). */
function paymentState(o: Order): { text: string; tone: 'ok' | 'warn' | 'down' } | null {
  const refund = o.payments.some((p) => p.outcome === 'REFUND_REQUESTED');
  if (expired(o)) return { text: refund ? 'expired, late payment refunded' : 'expired', tone: 'down' };
  if (o.status === 'CONFIRMED' && o.paymentDueAt) {
    const last = o.payments.at(-1);
    const failed = last?.outcome === 'FAILED' ? `; last attempt failed (${last.reason ?? 'no reason given'})` : '';
    const unpayable = o.totalCents === null ? ': no total, a product had no price' : '';
    return { text: `awaiting payment until ${clock(o.paymentDueAt)}${unpayable}${failed}`, tone: 'warn' };
  }
  if (o.status === 'CANCELLED' && refund) return { text: 'refund requested', tone: 'warn' };
  if (o.paidAt) return { text: `paid ${clock(o.paidAt)}`, tone: 'ok' };
  return null;
}

/** Runs `fn` now and every `ms`, while mounted. */
function usePoll(fn: () => Promise<void>, ms: number, deps: unknown[]) {
  useEffect(() => {
    let stopped = false;
    const tick = async () => {
      try {
        await fn();
      } catch {
        /* shown by the panel that failed */
      }
      if (!stopped) timer = setTimeout(() => void tick(), ms);
    };
    let timer = setTimeout(() => void tick(), 0);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, deps);
}

function SignIn({ auth, onChange }: { auth: Status['auth'] | undefined; onChange: () => void }) {
  const [draft, setDraft] = useState('');
  const identity = session.identity;
  if (auth !== 'jwt') return <p className="auth">Authentication is off: full access.</p>;
  if (identity) {
    return (
      <p className="auth">
        Signed in as <strong>{identity.sub}</strong> ({identity.role}){' '}
        <button
          type="button"
          onClick={() => {
            session.token = null;
            onChange();
          }}
        >
          Sign out
        </button>
      </p>
    );
  }
  return (
    <form
      className="auth"
      onSubmit={(e) => {
        e.preventDefault();
        session.token = draft.trim();
        setDraft('');
        onChange();
      }}
    >
      <label htmlFor="token">Bearer token</label>
      <input
        id="token"
        type="password"
        value={draft}
        onChange={(e) => setDraft(e.target.value)}
        placeholder="npm run token -- --role admin --sub me"
      />
      <button type="submit">Sign in</button>
    </form>
  );
}

/** One part's readiness: ready while it serves; degraded when something it uses is down (named). */
function Readiness({ label, part }: { label: string; part: Pick<Status['gateway'], 'ready' | 'checks'> }) {
  const down = Object.entries(part.checks ?? {}).filter(([, v]) => v !== 'up');
  return (
    <li className={!part.ready ? 'down' : down.length > 0 ? 'warn' : 'ok'}>
      {label}: {!part.ready ? 'not ready' : down.length > 0 ? 'ready, degraded' : 'ready'}
      {down.length > 0 ? ` (${down.map(([k]) => `${k} down`).join(', ')})` : ''}
    </li>
  );
}

function Health({ status }: { status: Status | null }) {
  if (!status) return <p className="health">Checking the services…</p>;
  const { outbox, deadLetters, queues } = status;
  const dead = Object.values(deadLetters ?? {}).reduce((a, b) => a + b, 0);
  const waiting = Object.entries(queues ?? {}).filter(([, n]) => n > 0);
  return (
    <ul className="health" aria-label="Health">
      {/* Ready without the broker, a service still serves (the outbox keeps the events): degraded. */}
      {status.services.map((s) => (
        <Readiness key={s.name} label={s.name === 'orders' ? 'Order Service' : 'Inventory Service'} part={s} />
      ))}
      {/* With one service down, the gateway still serves the other's half of the graph: degraded. */}
      <Readiness label="Gateway" part={status.gateway} />
      {/* The details are an admin's (with authentication on); anyone else sees only what is ready. */}
      {outbox && deadLetters && (
        <>
          <li className={status.services.every((s) => s.checks?.broker === 'up') ? 'ok' : 'down'}>
            Broker: {status.services.every((s) => s.checks?.broker === 'up') ? 'connected' : 'unreachable'}
          </li>
          <li className={outbox.orders + outbox.inventory > 1000 ? 'warn' : 'ok'}>
            Outbox backlog: {outbox.orders} orders, {outbox.inventory} inventory
          </li>
          <li className={waiting.reduce((total, [, n]) => total + n, 0) > 1000 ? 'warn' : 'ok'} data-field="queues">
            Waiting in queues: {waiting.length === 0 ? 'none' : waiting.map(([queue, n]) => `${n} in ${queue}`).join(', ')}
          </li>
          <li className={dead > 0 ? 'warn' : 'ok'}>Dead letters: {dead}</li>
        </>
      )}
    </ul>
  );
}

function FlowChart({ history }: { history: [number[], number[], number[]] }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    if (!box.current) return;
    plot.current = new uPlot(
      {
        width: box.current.clientWidth,
        height: 180,
        series: [{}, { label: 'confirmed/s', stroke: '#1a7f37', width: 2 }, { label: 'rejected/s', stroke: '#cf222e', width: 2 }],
        axes: [{}, { label: 'orders/s' }],
        // Always the five minutes up to the latest sample (or now, before the first): left to
        // itself, uPlot spreads no sample or a single one over years.
        scales: {
          x: {
            time: true,
            range: (self) => {
              const latest = self.data[0]?.at(-1) ?? Date.now() / 1000;
              return [latest - (HISTORY * POLL_MS) / 1000, latest];
            },
          },
        },
      },
      [[], [], []],
      box.current,
    );
    const resize = () => plot.current?.setSize({ width: box.current?.clientWidth ?? 300, height: 180 });
    window.addEventListener('resize', resize);
    return () => {
      window.removeEventListener('resize', resize);
      plot.current?.destroy();
    };
  }, []);
  useEffect(() => plot.current?.setData(history), [history]);
  return <div ref={box} className="chart" role="img" aria-label="Orders confirmed and rejected per second over the last five minutes" />;
}

function Catalog({ products, error }: { products: Product[]; error: string | null }) {
  return (
    <section aria-labelledby="catalog-title">
      <h2 id="catalog-title">Catalog</h2>
      {error && <p role="alert">{error}</p>}
      <div className="scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">Product</th>
              <th scope="col">Available</th>
              <th scope="col">Reserved</th>
              <th scope="col">Sold</th>
              <th scope="col">Backordered</th>
              <th scope="col">Available by location</th>
            </tr>
          </thead>
          <tbody>
            {products.map((p) => (
              <tr key={p.id} className={lowStock(p) ? 'low' : undefined} data-product={p.id}>
                <th scope="row">
                  {p.name} <span className="muted">{p.sku}</span>
                  {lowStock(p) && <span className="badge">low stock</span>}
                </th>
                <td data-field="available">{p.availableStock}</td>
                <td data-field="reserved">{p.reservedStock}</td>
                <td data-field="sold">{p.soldStock}</td>
                <td data-field="backordered">{p.backorderedStock}</td>
                <td data-field="locations" className="muted">
                  {p.stockLevels.map((l) => `${l.location.code} ${l.available}`).join(' · ')}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

/** `admin`: may fulfil and record payments (the Order Service lets only admins, or anyone with authentication off). */
function OrderActions({ order, admin, onDone }: { order: Order; admin: boolean; onDone: (error?: string) => void }) {
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

function PlaceOrder({ products, onPlaced }: { products: Product[]; onPlaced: (order: Order) => void }) {
  const identity = session.identity;
  const [customerId, setCustomerId] = useState(identity?.role === 'customer' ? identity.sub : 'walk-in');
  const [productId, setProductId] = useState('');
  const [quantity, setQuantity] = useState(1);
  const [error, setError] = useState<string | null>(null);
  const chosen = productId || products[0]?.id || '';
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const data = await gql<{ createOrder: Order }>(
        `mutation($input: CreateOrderInput!) { createOrder(input: $input) { ${ORDER_FIELDS} } }`,
        {
          input: { customerId, items: [{ productId: chosen, quantity }] },
        },
      );
      onPlaced(data.createOrder);
    } catch (err) {
      setError(message(err));
    }
  };
  return (
    <section aria-labelledby="place-title">
      <h2 id="place-title">Place an order</h2>
      <form className="place" onSubmit={(e) => void submit(e)}>
        <label>
          Customer
          <input value={customerId} onChange={(e) => setCustomerId(e.target.value)} required maxLength={100} />
        </label>
        <label>
          Product
          <select value={chosen} onChange={(e) => setProductId(e.target.value)}>
            {products.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name} ({p.availableStock} available)
              </option>
            ))}
          </select>
        </label>
        <label>
          Quantity
          <input type="number" min={1} value={quantity} onChange={(e) => setQuantity(Number(e.target.value))} required />
        </label>
        <button type="submit" disabled={!chosen}>
          Place order
        </button>
      </form>
      {error && <p role="alert">{error}</p>}
    </section>
  );
}

function RecentOrders({
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

/** The latest refunds asked for, and how many of them the payment service has not taken yet. */
function Refunds({ refunds, status }: { refunds: RefundRequest[]; status: Status | null }) {
  // How many wait is an admin's to see (with authentication on), as the queues are.
  const waiting = status?.queues && status.refundQueue ? (status.queues[status.refundQueue] ?? 0) : null;
  return (
    <section aria-labelledby="refunds-title">
      <h2 id="refunds-title">Refunds asked for</h2>
      {waiting !== null && (
        <p className={waiting > 0 ? 'warn' : 'muted'} data-field="refunds-waiting">
          {waiting > 0
            ? `${waiting} waiting in ${status?.refundQueue} until a payment service takes ${waiting === 1 ? 'it' : 'them'}.`
            : 'None waiting for the payment service.'}
        </p>
      )}
      {refunds.length === 0 ? (
        <p className="muted">No money has been asked back.</p>
      ) : (
        <ol className="orders">
          {refunds.map((r) => (
            <li key={r.paymentId} data-refund={r.paymentId}>
              {r.amountCents !== null && r.currency && <strong>{money(r.amountCents, r.currency)}</strong>} for{' '}
              <code title={r.orderId}>{r.orderId.slice(0, 12)}…</code>
              <span className="muted">
                {' '}
                ({r.reason}, {clock(r.updatedAt)})
              </span>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

function Rehearsal({ onError }: { onError: (m: string) => void }) {
  const [orders, setOrders] = useState(500);
  const [rate, setRate] = useState(100);
  const [state, setState] = useState<RehearsalState>({ running: false });
  usePoll(async () => setState(await fetchRehearsal()), 1_000, []);
  const p = state.progress;
  const r = state.report;
  return (
    <section aria-labelledby="rehearsal-title">
      <h2 id="rehearsal-title">Black-Friday rehearsal</h2>
      <form
        className="place"
        onSubmit={(e) => {
          e.preventDefault();
          startRehearsal(orders, rate).then(
            () => setState({ running: true, progress: null }),
            (err: unknown) => onError(message(err)),
          );
        }}
      >
        <label>
          Orders
          <input type="number" min={1} max={20000} value={orders} onChange={(e) => setOrders(Number(e.target.value))} />
        </label>
        <label>
          Per second
          <input type="number" min={1} max={5000} value={rate} onChange={(e) => setRate(Number(e.target.value))} />
        </label>
        <button type="submit" disabled={state.running}>
          {state.running ? 'Running…' : 'Start rehearsal'}
        </button>
      </form>
      <p aria-live="polite">
        {p &&
          `${Math.round(p.elapsedMs / 1000)} s: sent ${p.sent}, accepted ${p.accepted}, confirmed ${p.confirmed}, cancelled ${p.cancelled}, pending ${p.pending}`}
      </p>
      {r && (
        <p className={r.ok ? 'ok' : 'down'}>
          {r.accepted} accepted ({r.acceptedPerSecond.toFixed(0)}/s), completed {r.completedPerSecond.toFixed(0)}/s, latency p50{' '}
          {Math.round(r.latencyMs.p50)} ms / p99 {Math.round(r.latencyMs.p99)} ms, {r.outcomes.CONFIRMED} confirmed, {r.outcomes.CANCELLED}{' '}
          cancelled, {r.stuck} stuck, audit {r.audit}.
        </p>
      )}
      {state.error && <p role="alert">{state.error}</p>}
    </section>
  );
}

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
