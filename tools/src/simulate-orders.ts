/**
 * `npm run simulate` (orders mode): plays another team's Order Service on the wire. Publishes
 * OrderCreated in the contract's exact format to `orders` and reports every StockReserved /
 * StockRejected as it arrives (and each BackorderFilled of its orders), until each order is
 * answered or the timeout passes. Then, unless
 * told to keep them, it cancels the orders it left holding stock (OrderCancelled, as their Order
 * Service would) and waits for the Inventory Service to release them, so the demo's stock is as
 * it found it: no Order Service knows these orders, so nothing else ever would.
 */
import { randomInt } from 'node:crypto';
import { Connection } from 'rabbitmq-client';
import { JSON_CONTENT_TYPE, routeOf, type OrderCancelled, type OrderCreated } from '@stockflow/contracts';
import { connectionTarget } from '@stockflow/messaging';
import { messageJson, ownQueue, requireLocal } from './simulator.ts';

export interface OrderSimulationOptions {
  amqpUrl: string;
  orders: number;
  /** Product ids its lines are for, drawn at random. */
  products: number[];
  /** Each line asks for 1..maxQuantity units. */
  maxQuantity: number;
  /** Each order has 1..lines lines. */
  lines: number;
  /** Order ids are `<prefix>-1`, `<prefix>-2`... */
  prefix: string;
  /** How long to wait for the answers, and then again for the releases. */
  timeoutMs: number;
  /** Leave the reserved orders holding their stock (nothing will release it). */
  keep?: boolean | undefined;
  /** Run against a broker not on this machine (see requireLocal). */
  allowRemote?: boolean | undefined;
  /** Stops waiting for answers early (Ctrl-C); the cleanup still runs. */
  signal?: AbortSignal | undefined;
  log?: (line: string) => void;
}

export interface OrderSimulationReport {
  published: number;
  reserved: number;
  /** Of the reserved ones, those with units backordered (promised beyond the stock on hand). */
  backordered: number;
  rejected: number;
  /** Not answered within the timeout. */
  unanswered: number;
  /** Cancelled at the end: the reserved ones and the unanswered ones (which inventory might still reserve). */
  cancelled: string[];
  /** Of those, the ones inventory answered with StockReleased. */
  released: number;
  /**
   * Orders that may hold stock after the run: with `keep`, the reserved and the unanswered ones
   * (inventory may reserve those yet); otherwise the cancelled ones whose release did not come in time.
   */
  holding: string[];
}

const CANCEL_REASON = 'simulation over (npm run simulate)';

export async function simulateOrders(options: OrderSimulationOptions): Promise<OrderSimulationReport> {
  requireLocal({ amqpUrl: options.amqpUrl }, options.allowRemote);
  const log = options.log ?? (() => undefined);
  const connection = new Connection({ ...connectionTarget(options.amqpUrl), retryLow: 200, retryHigh: 1_000 });
  // onConnect closes the connection itself when it fails.
  await connection.onConnect(5_000);

  const answers = [routeOf('StockReserved'), routeOf('StockRejected'), routeOf('StockReleased'), routeOf('BackorderFilled')];
  const [reservedKey, , releasedKey, filledKey] = answers.map((a) => a.routingKey);
  const unanswered = new Set<string>();
  const reserved = new Set<string>();
  const rejected = new Set<string>();
  const backordered = new Set<string>();
  const releasing = new Set<string>();
  let released = 0;
  let changed: () => void = () => undefined;

  const listener = connection.createConsumer(ownQueue('simulate-orders', answers), (msg) => {
    const body = messageJson(msg) as { order_id?: unknown; items?: { backordered_quantity?: number }[] } | undefined;
    const id = typeof body?.order_id === 'string' ? body.order_id : undefined;
    if (id === undefined) return;
    if (msg.routingKey === filledKey) {
      if (!reserved.has(id) && !releasing.has(id)) return;
    } else if (msg.routingKey === releasedKey) {
      if (!releasing.delete(id)) return;
      released += 1;
    } else {
      if (!unanswered.delete(id)) return;
      (msg.routingKey === reservedKey ? reserved : rejected).add(id);
      if (body?.items?.some((line) => (line.backordered_quantity ?? 0) > 0)) backordered.add(id);
    }
    log(`${msg.routingKey.padEnd(15)} ${JSON.stringify(body)}`);
    changed();
  });
  // An ack can fail when the channel closes under it (a message that arrived between the
  // cancellation and the close): the broker redelivers it, so it is only worth a line.
  listener.on('error', (err: Error) => log(`answer listener: ${err.message}`));
  const publisher = connection.createPublisher({ confirm: true });
  const waitUntil = async (done: () => boolean, timeoutMs: number, signal?: AbortSignal) => {
    const until = Date.now() + timeoutMs;
    while (!done() && Date.now() < until && !signal?.aborted) {
      await new Promise<void>((resolve) => {
        changed = resolve;
        setTimeout(resolve, Math.min(250, Math.max(0, until - Date.now())));
      });
    }
  };

  try {
    await new Promise<void>((resolve) => listener.once('ready', () => resolve()));
    const orders: OrderCreated[] = Array.from({ length: options.orders }, (_, i) => ({
      event: 'OrderCreated',
      order_id: `${options.prefix}-${i + 1}`,
      items: Array.from({ length: randomInt(1, options.lines + 1) }, () => ({
        product_id: options.products[randomInt(options.products.length)] as number,
        quantity: randomInt(1, options.maxQuantity + 1),
      })),
    }));
    for (const order of orders) unanswered.add(order.order_id);
    const created = routeOf('OrderCreated');
    await Promise.all(
      orders.map((order) => publisher.send({ ...created, contentType: JSON_CONTENT_TYPE, durable: true }, JSON.stringify(order))),
    );
    log(`published ${orders.length} OrderCreated to ${created.exchange}/${created.routingKey}; waiting for answers...`);
    await waitUntil(() => unanswered.size === 0, options.timeoutMs, options.signal);
    const report = {
      published: orders.length,
      reserved: reserved.size,
      backordered: backordered.size,
      rejected: rejected.size,
      unanswered: unanswered.size,
    };
    if (options.keep) return { ...report, cancelled: [], released: 0, holding: [...reserved, ...unanswered] };

    // An unanswered order is cancelled too: inventory may reserve it yet, and a cancellation that
    // comes first makes it reject the order when it does.
    const cancelled = [...reserved, ...unanswered];
    for (const id of cancelled) releasing.add(id);
    const route = routeOf('OrderCancelled');
    await Promise.all(
      cancelled.map((id) => {
        const event: OrderCancelled = { event: 'OrderCancelled', order_id: id, reason: CANCEL_REASON };
        return publisher.send({ ...route, contentType: JSON_CONTENT_TYPE, durable: true }, JSON.stringify(event));
      }),
    );
    if (cancelled.length > 0)
      log(`published ${cancelled.length} OrderCancelled to ${route.exchange}/${route.routingKey}; waiting for the releases...`);
    await waitUntil(() => releasing.size === 0, options.timeoutMs);
    return { ...report, cancelled, released, holding: [...releasing] };
  } finally {
    await listener.close();
    await publisher.close();
    await connection.close();
  }
}
