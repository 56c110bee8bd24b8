import net from 'node:net';
import { Connection } from 'rabbitmq-client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { EXCHANGES, queueDeclarations, queues, ROUTING_KEYS } from '@stockflow/contracts';
import { startTcpProxy } from '@stockflow/testing';
import { createLogger } from '@stockflow/observability';
import { createAmqpTransport } from './amqp.ts';
import { UnroutableError, type Transport } from './transport.ts';

const servicesUnavailable = inject('servicesUnavailable');

describe.skipIf(servicesUnavailable)('AMQP transport publishing', () => {
  let transport: Transport;
  beforeAll(async () => {
    transport = await createAmqpTransport({
      url: inject('amqpUrl'),
      queues: [queues.orderCancelledInventory],
      queueType: 'quorum',
      connectionName: 'test',
      logger: createLogger({ name: 'test', level: 'silent' }),
    });
  });
  afterAll(async () => {
    await transport?.close();
  });

  it('rejects exactly the messages no queue took, though the broker confirmed them all', async () => {
    const routed = { exchange: EXCHANGES.orders, routingKey: ROUTING_KEYS.orderCancelled, messageId: 'routed', body: { n: 1 } };
    // order.fulfilled has a platform queue, only not in this vhost now (deleted, or its consumer never started).
    const admin = new Connection(inject('amqpUrl'));
    await admin.queueDelete({ queue: queues.orderFulfilledInventory.queue });
    const lost = { exchange: EXCHANGES.orders, routingKey: ROUTING_KEYS.orderFulfilled, messageId: 'lost', body: { n: 2 } };
    const error = await transport.publish([routed, lost, { ...routed, messageId: 'routed-2' }]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UnroutableError);
    expect((error as UnroutableError).messages).toEqual([lost]);
    expect((error as UnroutableError).message).toMatch(/NO_ROUTE.*orders\/order\.fulfilled/);
    // Routed messages alone go through, and so do events no platform queue is for (other teams may bind them, or nobody).
    await expect(transport.publish([routed])).resolves.toBeUndefined();
    await expect(
      transport.publish([{ exchange: EXCHANGES.orders, routingKey: ROUTING_KEYS.orderConfirmed, messageId: 'informational', body: {} }]),
    ).resolves.toBeUndefined();
    // Back as the services declare it, for the files that run after this one in the same vhost.
    await admin.queueDeclare(queueDeclarations(queues.orderFulfilledInventory, 'quorum').main);
    await admin.close();
  });

  it('reports the messages waiting in a queue for a consumer', async () => {
    const admin = new Connection(inject('amqpUrl'));
    await admin.queuePurge({ queue: queues.orderCancelledInventory.queue });
    expect(await transport.depth(queues.orderCancelledInventory)).toBe(0);
    const cancelled = (id: string) => ({ exchange: EXCHANGES.orders, routingKey: ROUTING_KEYS.orderCancelled, messageId: id, body: {} });
    await transport.publish([cancelled('a'), cancelled('b'), cancelled('c')]);
    expect(await transport.depth(queues.orderCancelledInventory)).toBe(3);
    await admin.queuePurge({ queue: queues.orderCancelledInventory.queue });
    await admin.close();
  });
});

describe.skipIf(servicesUnavailable)('AMQP transport at an IPv6 address', () => {
  // The shared broker listens on IPv4 only: a proxy of the test's own on ::1 stands in for a node reached over IPv6.
  const broker = new URL(inject('amqpUrl'));
  const viaIpv6 = (port: number) => {
    const u = new URL(broker.href);
    u.host = `[::1]:${port}`;
    return u.href;
  };
  const unusedIpv6Port = async () => {
    const server = net.createServer().listen(0, '::1');
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as net.AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    return port;
  };

  it.each([
    ['alone', false],
    ['in a list whose other IPv6 node is down', true],
  ])('connects, declares and publishes: %s', async (_label, inList) => {
    const proxy = await startTcpProxy({ host: broker.hostname, port: Number(broker.port || 5672) }, { listenOn: '::1' });
    const transport = await createAmqpTransport({
      url: inList ? `${viaIpv6(await unusedIpv6Port())},${viaIpv6(proxy.port)}` : viaIpv6(proxy.port),
      queues: [queues.orderCancelledInventory],
      queueType: 'quorum',
      connectionName: 'test-ipv6',
      logger: createLogger({ name: 'test', level: 'silent' }),
    });
    try {
      const publish = { exchange: EXCHANGES.orders, routingKey: ROUTING_KEYS.orderCancelled, messageId: 'over-ipv6', body: { n: 1 } };
      await expect(transport.publish([publish])).resolves.toBeUndefined();
      expect(transport.peer).toEqual({ system: 'rabbitmq', ...(inList ? {} : { address: '::1', port: proxy.port }) });
    } finally {
      await transport.close();
      await proxy.close();
    }
  });
});
