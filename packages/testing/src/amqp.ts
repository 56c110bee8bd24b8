import { Connection, type AsyncMessage, type SyncMessage } from 'rabbitmq-client';
import { parseBrokerUrls } from '@stockflow/platform';

export interface ReceivedMessage {
  routingKey: string;
  exchange: string;
  contentType: string | undefined;
  durable: boolean;
  headers: Record<string, unknown>;
  /** The body exactly as it came over the wire. */
  raw: string;
  json: unknown;
}

/**
 * A plain AMQP client for tests, speaking to the broker the way another team's service would:
 * raw bytes out, raw bytes in, nothing from our own messaging code.
 */
export async function rawAmqp(url: string) {
  // A cluster's nodes (comma-separated) are tried in turn, as the services do. The harness's
  // brokers listen on IPv4, so rabbitmq-client's own `host:port` nodes reach them.
  const nodes = parseBrokerUrls(url);
  const connection = new Connection({
    url: nodes[0]?.url,
    hosts: nodes.map(({ node }) => `${node.host}:${node.port}`),
    retryLow: 100,
    retryHigh: 1_000,
  });
  await connection.onConnect(5_000);
  const publisher = connection.createPublisher({ confirm: true });
  const closers: (() => Promise<void>)[] = [];

  const toReceived = (msg: AsyncMessage | SyncMessage): ReceivedMessage => {
    const raw = Buffer.isBuffer(msg.body) ? msg.body.toString() : typeof msg.body === 'string' ? msg.body : JSON.stringify(msg.body);
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      json = undefined;
    }
    return {
      routingKey: msg.routingKey,
      exchange: msg.exchange,
      contentType: msg.contentType,
      durable: msg.durable === true,
      headers: msg.headers ?? {},
      raw,
      json,
    };
  };

  return {
    connection,
    async publish(
      exchange: string,
      routingKey: string,
      body: string | object,
      options: { contentType?: string; headers?: Record<string, string> } = {},
    ) {
      const bytes = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
      await publisher.send(
        { exchange, routingKey, contentType: options.contentType ?? 'application/json', durable: true, headers: options.headers },
        bytes,
      );
    },

    /**
     * Collects every message routed from `exchange` with `bindingKey` into an exclusive queue of
     * the test's own; `waitFor(n)` resolves once n have arrived.
     */
    async listen(exchange: string, bindingKey: string) {
      const received: ReceivedMessage[] = [];
      const waiters: { n: number; resolve: () => void }[] = [];
      const ready = new Promise<void>((resolve) => {
        const consumer = connection.createConsumer(
          {
            queue: '',
            queueOptions: { exclusive: true, autoDelete: true },
            // An empty queue name in a bind means "the queue this channel just declared".
            queueBindings: [{ exchange, routingKey: bindingKey }],
          },
          (msg) => {
            received.push(toReceived(msg));
            for (const w of waiters.filter((w) => received.length >= w.n)) w.resolve();
          },
        );
        // A message that arrives between the cancellation and the close fails its ack: the
        // test is over by then, and without a listener the library's 'error' would be thrown.
        consumer.on('error', () => undefined);
        consumer.once('ready', () => resolve());
        closers.push(() => consumer.close());
      });
      await ready;
      return {
        received,
        waitFor(n: number, timeoutMs = 15_000): Promise<ReceivedMessage[]> {
          if (received.length >= n) return Promise.resolve(received);
          return new Promise((resolve, reject) => {
            const timer = setTimeout(
              () => reject(new Error(`expected ${n} messages on ${exchange}/${bindingKey}, got ${received.length} after ${timeoutMs} ms`)),
              timeoutMs,
            );
            waiters.push({
              n,
              resolve: () => {
                clearTimeout(timer);
                resolve(received);
              },
            });
          });
        },
      };
    },

    /** Takes every message currently in a queue (for inspecting a DLQ). */
    async drainQueue(queue: string): Promise<ReceivedMessage[]> {
      const out: ReceivedMessage[] = [];
      for (;;) {
        const msg = await connection.basicGet({ queue, noAck: true });
        if (!msg) return out;
        out.push(toReceived(msg));
      }
    },

    async close() {
      for (const close of closers) await close();
      await publisher.close();
      await connection.close();
    },
  };
}

export type RawAmqp = Awaited<ReturnType<typeof rawAmqp>>;
