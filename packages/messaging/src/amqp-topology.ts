import dns from 'node:dns';
import { isIPv6, type LookupFunction, type TcpSocketConnectOpts } from 'node:net';
import { checkServerIdentity } from 'node:tls';
import type { ConnectionOptions } from 'rabbitmq-client';
import {
  deadLetterRoute,
  exchanges as topologyExchanges,
  queueDeclarations,
  type QueueDeclaration,
  type QueueSpec,
  type QueueType,
} from '@stockflow/contracts';
import { parseBrokerUrls } from '@stockflow/platform';
import type { Logger } from '@stockflow/observability';

export const declareExchanges = () => topologyExchanges.map((e) => ({ exchange: e.exchange, type: e.type, durable: e.durable }));

/** Every queue of `queues` and its bindings, as declared for `type`. */
export function declarations(queues: QueueSpec[], type: QueueType) {
  return {
    queues: queues.flatMap((q) => {
      const d = queueDeclarations(q, type);
      return [d.main, d.deadLetter, ...d.retries];
    }),
    queueBindings: queues.flatMap((q) => [
      ...q.bindings.map((b) => ({ queue: q.queue, exchange: b.exchange, routingKey: b.routingKey })),
      { queue: q.deadLetterQueue, ...deadLetterRoute(q) },
    ]),
  };
}

/** A stand-in for an IPv6 address in rabbitmq-client's `host:port` (Windows' convention for IPv6 literals as names). */
const ipv6Name = (address: string) => `${address.replaceAll(':', '-')}.ipv6-literal.net`;

/**
 * The options of rabbitmq-client for one URL or a list (see parseBrokerUrls): credentials and
 * vhost from the first, every node's host and port.
 *
 * rabbitmq-client splits each node at its first `:` into host and port, and hands a URL's host to
 * the socket with its brackets, so it cannot reach an IPv6 address by either. Such a node is given
 * to it under a name without colons instead, which the socket's lookup turns back into the address
 * (other names are looked up as usual), and against which a TLS certificate is checked as for the
 * address itself.
 */
export function connectionTarget(value: string): { url: string; hosts: string[] } & Pick<ConnectionOptions, 'socket' | 'tls'> {
  const nodes = parseBrokerUrls(value);
  const addresses = new Map<string, string>();
  const hosts = nodes.map(({ node }) => {
    if (!isIPv6(node.host)) return `${node.host}:${node.port}`;
    addresses.set(ipv6Name(node.host), node.host);
    return `${ipv6Name(node.host)}:${node.port}`;
  });
  const url = (nodes[0] as { url: string }).url;
  if (addresses.size === 0) return { url, hosts };
  const lookup: LookupFunction = (hostname, options, callback) => {
    const address = addresses.get(hostname);
    if (address === undefined) dns.lookup(hostname, options, callback);
    else if (options.all) callback(null, [{ address, family: 6 }]);
    else callback(null, address, 6);
  };
  return {
    url,
    hosts,
    // Not a whole socket's options: rabbitmq-client spreads these over each node's host and port.
    socket: { lookup } as TcpSocketConnectOpts,
    ...(url.startsWith('amqps:')
      ? { tls: { checkServerIdentity: (name, cert) => checkServerIdentity(addresses.get(name) ?? name, cert) } }
      : {}),
  };
}

/** The reply code of a broker's refusal (`PRECONDITION_FAILED`, `NOT_FOUND`...), if it is one. */
export const amqpErrorCode = (error: unknown): string | undefined => (error as { code?: string }).code;

/**
 * Declares a queue unless one of that name exists with other arguments (another queue type, most
 * likely: a deployment that has not been migrated, see `npm run queues`). Then the existing queue
 * is used as it is and the difference is logged, rather than the service refusing to start or to
 * consume: the queue still holds and delivers the messages, only not as configured.
 */
export async function declareQueue(
  declare: (d: QueueDeclaration & { passive?: boolean }) => Promise<unknown>,
  queue: QueueDeclaration,
  logger: Logger,
): Promise<void> {
  try {
    await declare(queue);
  } catch (error) {
    if (amqpErrorCode(error) !== 'PRECONDITION_FAILED') throw error;
    await declare({ ...queue, passive: true });
    logger.error(
      { queue: queue.queue, wanted: queue.arguments, err: error },
      'queue exists with other arguments than configured (AMQP_QUEUE_TYPE?); using it as it is: migrate it with npm run queues -- migrate',
    );
  }
}
