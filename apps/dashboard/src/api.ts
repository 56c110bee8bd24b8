/** The dashboard's side of the platform: the one graph (the gateway, through the dashboard server), SSE subscriptions, status. */

export type Service = 'orders' | 'inventory';
export type OrderStatus = 'PENDING' | 'CONFIRMED' | 'PAID' | 'CANCELLED' | 'FULFILLED';

export interface Payment {
  paymentId: string;
  amountCents: number | null;
  currency: string | null;
  outcome: 'PAID' | 'FAILED' | 'REFUND_REQUESTED';
  reason: string | null;
}

/** A payment whose money is asked back, as the refunds list shows it. */
export interface RefundRequest extends Payment {
  orderId: string;
  /** When it was asked back. */
  updatedAt: string;
}

export interface Order {
  id: string;
  customerId: string;
  status: OrderStatus;
  reason: string | null;
  /** Some units are backordered: it cannot be fulfilled until they arrive. */
  awaitingStock: boolean;
  /** `product` is joined from the Inventory Service by the gateway; null for a product it no longer has. */
  items: { productId: string; quantity: number; backorderedQuantity: number; product: { name: string } | null }[];
  totalCents: number | null;
  currency: string | null;
  /** Null when payments are off (the shop takes them elsewhere): nothing expires then. */
  paymentDueAt: string | null;
  paidAt: string | null;
  payments: Payment[];
  createdAt: string;
  updatedAt: string;
}

export interface Product {
  id: string;
  sku: string;
  name: string;
  availableStock: number;
  reservedStock: number;
  soldStock: number;
  /** Units promised to orders and not in stock yet. */
  backorderedStock: number;
  /** What is available at each location, in order of allocation preference. */
  stockLevels: { location: { code: string }; available: number }[];
}

/**
 * The dashboard server's summary. With authentication on, only an admin's token gets the details
 * (each part's checks and error, the outbox, dead letters, decisions); anyone else whether each
 * part is ready.
 */
export interface Status {
  at: number;
  auth: 'jwt' | 'disabled';
  services: { name: Service; ready: boolean; checks?: Record<string, string> | null; error?: string }[];
  gateway: { ready: boolean; checks?: Record<string, string> | null; error?: string };
  // The rest is an admin's to see, with authentication on.
  outbox?: Record<Service, number>;
  /** Messages waiting for a consumer, by queue. */
  queues?: Record<string, number>;
  /** The payment service's queue of refund requests. */
  refundQueue?: string;
  deadLetters?: Record<string, number>;
  decisions?: { reserved: number; rejected: number };
}

/** The start of the reason the Order Service gives an order whose payment hold ran out. */
const EXPIRED_REASON = 'Payment not received by ';
export const expired = (order: Order) => order.status === 'CANCELLED' && order.reason?.startsWith(EXPIRED_REASON) === true;

/**
 * A payment id of the dashboard's own. Not crypto.randomUUID: that exists only in a secure
 * context, and a dashboard opened to the network (HOST=0.0.0.0) is reached over plain http.
 */
export const newPaymentId = () =>
  `dashboard-${Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('')}`;

const TOKEN_KEY = 'stockflow-token';

/** The bearer token the operator signed in with, kept for this browser tab only. */
export const session = {
  get token(): string | null {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set token(value: string | null) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
  /** The token's subject and role, read from its payload (the services verify it; this only shows it). */
  get identity(): { sub: string; role: string } | null {
    const payload = session.token?.split('.')[1];
    if (!payload) return null;
    try {
      const claims = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))) as { sub?: string; role?: string };
      return claims.sub && claims.role ? { sub: claims.sub, role: claims.role } : null;
    } catch {
      return null;
    }
  },
};

const headers = (extra: Record<string, string> = {}): Record<string, string> => ({
  'content-type': 'application/json',
  ...(session.token ? { authorization: `Bearer ${session.token}` } : {}),
  ...extra,
});

export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

/** The gateway's graph: a request may take from both services at once. */
const GRAPHQL = 'api/graphql';

export async function gql<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
  const res = await fetch(GRAPHQL, {
    method: 'POST',
    headers: headers({ accept: 'application/json' }),
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
  const [error] = body.errors ?? [];
  if (error || !body.data) throw new ApiError(error?.message ?? `HTTP ${res.status}`, error?.extensions?.code);
  return body.data;
}

/**
 * A GraphQL subscription over Server-Sent Events (fetch, so the token goes in a header). It
 * reconnects after a dropped stream; the returned function ends it.
 */
export function subscribe<T>(query: string, variables: Record<string, unknown>, onData: (data: T) => void): () => void {
  let stopped = false;
  let controller = new AbortController();
  const run = async () => {
    while (!stopped) {
      try {
        const res = await fetch(GRAPHQL, {
          method: 'POST',
          headers: headers({ accept: 'text/event-stream' }),
          body: JSON.stringify({ query, variables }),
          signal: controller.signal,
        });
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const data = buffer
              .slice(0, end)
              .split('\n')
              .filter((l) => l.startsWith('data:'))
              .map((l) => l.slice(5).trim())
              .join('');
            buffer = buffer.slice(end + 2);
            if (!data) continue;
            const payload = JSON.parse(data) as { data?: T };
            if (payload.data) onData(payload.data);
          }
        }
      } catch {
        /* dropped or refused: try again shortly */
      }
      if (!stopped) await new Promise((r) => setTimeout(r, 2_000));
      controller = new AbortController();
    }
  };
  void run();
  return () => {
    stopped = true;
    controller.abort();
  };
}

export async function fetchStatus(): Promise<Status> {
  const res = await fetch('api/status', { headers: headers() });
  // A token the platform no longer takes (expired, another secret): signed out, and asked again without it.
  if (res.status === 401 && session.token) {
    session.token = null;
    return fetchStatus();
  }
  return (await res.json()) as Status;
}

export interface RehearsalState {
  running: boolean;
  startedAt?: string;
  progress?: {
    elapsedMs: number;
    sent: number;
    accepted: number;
    failed: number;
    confirmed: number;
    cancelled: number;
    pending: number;
  } | null;
  report?: {
    accepted: number;
    failed: number;
    acceptedPerSecond: number;
    completedPerSecond: number;
    latencyMs: { p50: number; p99: number };
    outcomes: Record<OrderStatus, number>;
    stuck: number;
    audit: string;
    ok: boolean;
  } | null;
  error?: string | null;
}

export async function startRehearsal(orders: number, rate: number): Promise<void> {
  const res = await fetch('api/rehearsal', { method: 'POST', headers: headers(), body: JSON.stringify({ orders, rate }) });
  if (!res.ok) throw new ApiError(((await res.json()) as { error: string }).error, undefined);
}

export async function fetchRehearsal(): Promise<RehearsalState> {
  return (await (await fetch('api/rehearsal')).json()) as RehearsalState;
}
