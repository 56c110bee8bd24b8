import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { EXCHANGES, queues, ROUTING_KEYS } from '@stockflow/contracts';
import { connectionNodes, createClusterVhost, ensureBrokerCluster, killNode, queueLeader, startNode } from '@stockflow/testing';
import { createLogger } from '@stockflow/observability';
import { createAmqpTransport } from './amqp.ts';
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
  beforeAll(async () => {
    vhost = await createClusterVhost('transport');
  });
  afterAll(async () => {
    await transport?.close();
    if (killed) await startNode(killed);
    await ensureBrokerCluster();
    await vhost?.remove();
  });

  it('is served again on another node soon after its own node, which led the queues, was killed while it published', async () => {
    // The first to declare a quorum queue places its leader on its own node: this transport's.
    transport = await createAmqpTransport({
      url: vhost.url,
      queues: [queues.orderCreatedInventory, queues.orderCancelledInventory, queues.orderFulfilledInventory],
      queueType: 'quorum',
      connectionName: 'transport-test',
      logger: createLogger({ name: 'test', level: 'silent' }),
    });
    const node = (await connectionNodes(vhost.vhost)).find((c) => c.clientName === 'transport-test')?.node;
    expect(await queueLeader(vhost.vhost, queues.orderCreatedInventory.queue)).toBe(node);

    // Publishing all along, as an outbox under load does: the kill lands with publishes in flight.
    const outcomes: { at: number; ok: boolean; error?: string }[] = [];
    let publishing = true;
    const loop = (async () => {
      while (publishing) {
        await (transport).publish(batch()).then(
          () => outcomes.push({ at: Date.now(), ok: true }),
          (error: unknown) => outcomes.push({ at: Date.now(), ok: false, error: (error as Error).message }),
        );
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await new Promise((r) => setTimeout(r, 2_000));
    killed = node;
    await killNode(node as string);
    const killedAt = Date.now();
    // RabbitMQ 3.10 went on refusing the reconnected channel's publishes to one of the queues for
    // 45 s and more, though every queue had a leader again; a new channel was served at once.
    await new Promise((r) => setTimeout(r, 20_000));
    publishing = false;
    await loop;
    const last5s = outcomes.filter((o) => o.at > killedAt + 15_000);
    expect(last5s.length).toBeGreaterThan(0);
    expect(
      last5s.filter((o) => !o.ok),
      'refused 15-20 s after the kill',
    ).toEqual([]);
  });
});
