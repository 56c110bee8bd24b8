import { Connection } from 'rabbitmq-client';
import { JSON_CONTENT_TYPE, routeOf, type EventName } from '@stockflow/contracts';
import { connectionTarget } from '@stockflow/messaging';

/** Publishes events where their producer would (routeOf), with confirms, a thousand in flight at a time. */
export async function publishAll(amqpUrl: string, events: { event: EventName }[]): Promise<void> {
  const connection = new Connection(connectionTarget(amqpUrl));
  await connection.onConnect(5_000);
  const publisher = connection.createPublisher({ confirm: true });
  try {
    for (let i = 0; i < events.length; i += 1_000) {
      await Promise.all(
        events
          .slice(i, i + 1_000)
          .map((event) =>
            publisher.send({ ...routeOf(event.event), contentType: JSON_CONTENT_TYPE, durable: true }, JSON.stringify(event)),
          ),
      );
    }
  } finally {
    await publisher.close();
    await connection.close();
  }
}
