import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { EXCHANGES, queues, ROUTING_KEYS } from '@stockflow/contracts';
import {
  awaitQueuesHealthy,
  connectionNodes,
  createClusterVhost,
  ensureBrokerCluster,
  killNode,
  queueLeader,
  quorumQueueStates,
  startNode,
} from '@stockflow/testing';
import { createLogger } from '@stockflow/observability';
import { createAmqpTransport } from './amqp.ts';
import { PUBLISH_TIMEOUT_MS, withTimeout } from './outbox.ts';
import type { Transport } from './transport.ts';

const clusterUnavailable = inject('brokerClusterUnavailable');

/** One message to each of the three queues, as the Order Service's outbox publishes them. */
const batch = () =>
  [ROUTING_KEYS.orderCreated, ROUTING_KEYS.orderCancelled, ROUTING_KEYS.orderFulfilled].map((routingKey) => {
    const id = randomUUID();
    return { exchange: EXCHANGES.orders, routingKey, messageId: id, body: { order_id: `ORD-${id}` } };
  });

describe.skipIf(clusterUnavailable)('AMQP transport on the 3-node cluster', { timeout: 180_000 }, () => {
  let vhost: Awaited<ReturnType<typeof createClusterVhost>>;
  let transport: Transport | undefined;
  let killed: string | undefined;
  const logged: string[] = [];
  beforeAll(async () => {
    vhost = await createClusterVhost('transport');
  });
  afterAll(async () => {
    try {
      await transport?.close();
    } finally {
      try {
        if (killed) await startNode(killed);
        await ensureBrokerCluster();
      } finally {
        await vhost?.remove();
      }
    }
  }, 180_000);

  it('is served again on another node soon after its own node, which led the queues, was killed while it published', async () => {
    // The first to declare a quorum queue places its leader on its own node: this transport's.
    transport = await createAmqpTransport({
      url: vhost.url,
      queues: [queues.orderCreatedInventory, queues.orderCancelledInventory, queues.orderFulfilledInventory],
      queueType: 'quorum',
      connectionName: 'transport-test',
      logger: createLogger({ name: 'test', level: 'warn', destination: { write: (line: string) => void logged.push(line) } }),
    });
    const publishing = transport;
    await awaitQueuesHealthy(vhost.vhost);
    const node = (await connectionNodes(vhost.vhost)).find((c) => c.clientName === 'transport-test')?.node;
    expect(await queueLeader(vhost.vhost, queues.orderCreatedInventory.queue)).toBe(node);

    // Publishing all along, as an outbox under load does (a publish unconfirmed after its timeout
    // fails): the kill lands with publishes in flight.
    const outcomes: { at: number; ok: boolean; error?: string }[] = [];
    let running = true;
    // Four at a time, as an outbox's relay and its after-commit publishes overlap.
    const loop = Promise.all(
      Array.from({ length: 4 }, async () => {
        while (running) {
          await withTimeout(publishing.publish(batch()), PUBLISH_TIMEOUT_MS, 'no confirm in time').then(
            () => outcomes.push({ at: Date.now(), ok: true }),
            (error: unknown) => outcomes.push({ at: Date.now(), ok: false, error: (error as Error).message }),
          );
          await new Promise((r) => setTimeout(r, 20));
        }
      }),
    );
    let killedAt = 0;
    try {
      await new Promise((r) => setTimeout(r, 2_000));
      killed = node;
      await killNode(node as string);
      killedAt = Date.now();
      // RabbitMQ 3.10 went on refusing the reconnected channel's publishes to one of the queues for
      // 45 s and more, though every queue had a leader again; a new channel was served at once.
      await new Promise((r) => setTimeout(r, 20_000));
    } finally {
      running = false;
      await loop;
    }
    const late = outcomes.filter((o) => o.at > killedAt + 15_000);
    expect(late.length).toBeGreaterThan(0);
    const refused = late.filter((o) => !o.ok);
    if (refused.length > 0)
      expect.fail(
        `${refused.length} publishes refused 15-20 s after the kill (${refused[0]?.error}):\n${await quorumQueueStates(vhost.vhost)}`,
      );
    // Each new channel is logged, and they come one per 5 s at most.
    const replaced = logged.filter((l) => l.includes('publishing on a new channel'));
    expect(replaced.length).toBeLessThanOrEqual(5);
  });
});
