import { randomUUID } from 'node:crypto';
import type { Connection, ReturnedMessage } from 'rabbitmq-client';
import { exchanges, JSON_CONTENT_TYPE, PaymentFailed, PaymentSucceeded, routeOf, type PaymentEvent } from '@stockflow/contracts';

/** A new event's id and time. */
export const meta = () => ({ event_id: randomUUID(), occurred_at: new Date().toISOString() });

/** Publishes payment events where a payment service would (routeOf), with confirms, counting what it sent. */
export function paymentPublisher(connection: Connection, log: (line: string) => void) {
  const sent = { succeeded: 0, failed: 0 };
  const unroutable = new Set<string>();
  const publisher = connection.createPublisher({
    confirm: true,
    exchanges: exchanges.map((e) => ({ exchange: e.exchange, type: e.type, durable: e.durable })),
  });
  // Mandatory: a payment no queue takes (no Order Service has declared payment.orders) is
  // reported rather than lost without a word.
  publisher.on('basic.return', (msg: ReturnedMessage) => {
    if (msg.messageId) unroutable.add(msg.messageId);
  });

  const publish = async (payment: PaymentEvent) => {
    const { exchange, routingKey } = routeOf(payment.event);
    const body = payment.event === 'PaymentSucceeded' ? PaymentSucceeded.parse(payment) : PaymentFailed.parse(payment);
    await publisher.send(
      {
        exchange,
        routingKey,
        contentType: JSON_CONTENT_TYPE,
        durable: true,
        mandatory: true,
        messageId: payment.event_id,
      },
      JSON.stringify(body),
    );
    sent[payment.event === 'PaymentSucceeded' ? 'succeeded' : 'failed'] += 1;
    log(`${routingKey.padEnd(22)} ${JSON.stringify(body)}`);
  };
  /** `unroutable`: the message ids the broker returned. */
  return { publish, sent, unroutable, close: () => publisher.close() };
}
