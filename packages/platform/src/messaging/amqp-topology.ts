import {
  deadLetterRoute,
  exchanges as topologyExchanges,
  queueDeclarations,
  type QueueDeclaration,
  type QueueSpec,
  type QueueType,
} from '@stockflow/contracts';
import { splitUrlList } from '../config.ts';
import type { Logger } from '../logger.ts';

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

/** The options of rabbitmq-client for one URL or a list: credentials and vhost from the first, every node's host and port. */
export function connectionTarget(url: string): { url: string; hosts: string[] } {
  const urls = splitUrlList(url);
  return {
    url: urls[0] as string,
    hosts: urls.map((u) => new URL(u)).map((u) => `${u.hostname}:${u.port || (u.protocol === 'amqps:' ? 5671 : 5672)}`),
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
