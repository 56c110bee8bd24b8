/** What both simulators (simulate-orders.ts, simulate-payments/) share. */
import { randomBytes } from 'node:crypto';
import type { AsyncMessage } from 'rabbitmq-client';
import { exchanges } from '@stockflow/contracts';
import { AppError, isLoopbackHost, parseBrokerUrls } from '@stockflow/platform';
import { safeUrl } from '@stockflow/observability';

/**
 * The simulators publish made-up orders, payments and cancellations, and a platform acts on them
 * as on real ones: stock is held, orders are paid, refunds are asked of the payment service. So
 * they run only against this machine (the broker, and the Order API the payment simulator places
 * its orders through) unless `allowRemote` says that another one is meant.
 */
export function requireLocal(targets: { amqpUrl: string; ordersUrl?: string | undefined }, allowRemote = false): void {
  if (allowRemote) return;
  const remote = parseBrokerUrls(targets.amqpUrl)
    .filter(({ node }) => !isLoopbackHost(node.host))
    .map(({ url }) => `the broker ${safeUrl(url)}`);
  if (targets.ordersUrl !== undefined && !isLoopbackHost(new URL(targets.ordersUrl).hostname.replace(/^\[(.*)\]$/, '$1'))) {
    remote.push(`the Order API ${safeUrl(targets.ordersUrl)}`);
  }
  if (remote.length === 0) return;
  throw new AppError(
    'FORBIDDEN',
    `refusing to run against ${remote.join(' and ')}: not on this machine. The simulator sends made-up orders and payments, which a platform there would act on as real ones; pass --allow-remote if that is what you mean`,
    { details: { remote } },
  );
}

/**
 * A queue of the simulator's own, bound to what it watches: it gets a copy of each event and takes
 * none from a queue that is another party's (a payment service's refunds, say). Exclusive and
 * auto-deleted, so it goes with the simulator's connection.
 */
export const ownQueue = (simulator: string, queueBindings: { exchange: string; routingKey: string }[]) => ({
  queue: `${simulator}.${randomBytes(6).toString('hex')}`,
  queueOptions: { exclusive: true, autoDelete: true },
  exchanges: exchanges.map((e) => ({ exchange: e.exchange, type: e.type, durable: e.durable })),
  queueBindings,
});

/** A message's JSON body (rabbitmq-client has already parsed a JSON one), or undefined when it is not JSON. */
export function messageJson(msg: AsyncMessage): unknown {
  if (!Buffer.isBuffer(msg.body) && typeof msg.body !== 'string') return msg.body;
  try {
    return JSON.parse(msg.body.toString());
  } catch {
    return undefined;
  }
}
