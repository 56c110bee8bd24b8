import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { EXCHANGES, queues, ROUTING_KEYS, type OutgoingMessage } from '@stockflow/contracts';
import { createAmqpTransport, type Transport } from '@stockflow/messaging';
import { createLogger } from '@stockflow/observability';
import { createTestVhost } from '@stockflow/testing';
import { migrateToQuorum, openBroker, queueStates } from './queue-migration.ts';

const run = promisify(execFile);
const servicesUnavailable = inject('servicesUnavailable');
const logger = createLogger({ name: 'test', level: 'silent' });

/** The broker's own word on each queue's type, not the tool's. */
async function typesOnBroker(vhost: string): Promise<Record<string, string>> {
  const { stdout } = await run('rabbitmqctl', ['-q', 'list_queues', '-p', vhost, 'name', 'type', '--formatter', 'json']);
  return Object.fromEntries((JSON.parse(stdout) as { name: string; type: string }[]).map((q) => [q.name, q.type]));
}

const created = (id: string): OutgoingMessage => ({
  exchange: EXCHANGES.orders,
  routingKey: ROUTING_KEYS.orderCreated,
  messageId: id,
  body: { event: 'OrderCreated', order_id: id, items: [{ product_id: 1, quantity: 1 }] },
});

describe.skipIf(servicesUnavailable)('moving classic queues to quorum queues', () => {
  let vhost: Awaited<ReturnType<typeof createTestVhost>>;
  let classic: Transport;
  let upgraded: Transport;

  beforeAll(async () => {
    vhost = await createTestVhost();
    // The deployment before: classic queues, as the services declared them until now.
    classic = await createAmqpTransport({
      url: vhost.url,
      queues: Object.values(queues),
      queueType: 'classic',
      connectionName: 'old',
      logger,
    });
    // A service already set to quorum (the procedure's first step) keeps working on them.
    upgraded = await createAmqpTransport({
      url: vhost.url,
      queues: Object.values(queues),
      queueType: 'quorum',
      connectionName: 'new',
      logger,
    });
  });
  afterAll(async () => {
    await classic?.close();
    await upgraded?.close();
    await vhost?.remove();
  });

  it('loses no message waiting, retrying, parked or published during the move', { timeout: 180_000 }, async () => {
    const target = queues.orderCreatedInventory;
    const waiting = Array.from({ length: 300 }, (_, i) => `waiting-${i}`);
    await classic.publish(waiting.map(created));
    const retrying = Array.from({ length: 20 }, (_, i) => `retrying-${i}`);
    // A 5 s tier: they are still waiting there when the migration reaches them.
    const tier = target.retryQueues[1]?.queue as string;
    await classic.publish(retrying.map((id) => ({ ...created(id), exchange: '', routingKey: tier })));
    const parked = Array.from({ length: 20 }, (_, i) => `parked-${i}`);
    await classic.publish(parked.map((id) => ({ ...created(id), exchange: EXCHANGES.deadLetter, routingKey: target.queue })));
    expect(Object.values(await typesOnBroker(vhost.vhost)).every((t) => t === 'classic')).toBe(true);

    // Publishing goes on during the move, as the outbox does: a message is sent again until the
    // broker confirms it and no return says it reached no queue.
    const confirmed: string[] = [];
    let stop = false;
    const keepPublishing = (prefix: string, to: (id: string) => OutgoingMessage) =>
      (async () => {
        for (let i = 0; !stop; i += 1) {
          const id = `${prefix}-${i}`;
          for (;;) {
            try {
              await upgraded.publish([to(id)]);
              confirmed.push(id);
              break;
            } catch {
              await new Promise((r) => setTimeout(r, 5));
            }
          }
        }
      })();
    const publishing = keepPublishing('live', created);
    while (confirmed.length < 50) await new Promise((r) => setTimeout(r, 5));

    const connection = await openBroker(vhost.url);
    // And a replay (sent by the queue's name) is stored in the consumer queue between its last
    // move and its delete: "delete if empty" must refuse, and the message be moved.
    let raced = false;
    const steps = await migrateToQuorum(connection, undefined, {
      async beforeDelete(queue) {
        if (queue !== target.queue || raced) return;
        raced = true;
        await classic.publish([{ ...created('racing'), exchange: '', routingKey: target.queue }]);
      },
    });
    expect(raced).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    stop = true;
    await publishing;

    const types = await typesOnBroker(vhost.vhost);
    const declared = Object.values(queues).flatMap((q) => [q.queue, q.deadLetterQueue, ...q.retryQueues.map((r) => r.queue)]);
    expect(Object.fromEntries(declared.map((q) => [q, types[q]]))).toEqual(Object.fromEntries(declared.map((q) => [q, 'quorum'])));
    expect(Object.keys(types).filter((q) => q.endsWith('.migrating'))).toEqual([]);
    expect(steps).toHaveLength(declared.length);
    expect((await queueStates(connection)).every((s) => s.type === 'quorum')).toBe(true);

    // Everything is where it belongs: the parked still parked, the rest on the queue (the
    // retrying ones once their delay, restarted by the move, has run out).
    const ids = async (queue: string) => {
      const out: string[] = [];
      for (;;) {
        const m = await connection.basicGet({ queue, noAck: true });
        if (!m) return out;
        out.push(m.messageId as string);
      }
    };
    expect(new Set(await ids(target.deadLetterQueue))).toEqual(new Set(parked));
    const deadline = Date.now() + 60_000;
    while ((await connection.queueDeclare({ queue: tier, passive: true })).messageCount > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
    }
    const onQueue = new Set(await ids(target.queue));
    const missing = [...waiting, ...retrying, ...confirmed, 'racing'].filter((id) => !onQueue.has(id));
    expect(missing).toEqual([]);
    expect(confirmed.length).toBeGreaterThan(50);
    await connection.close();
  });
});
