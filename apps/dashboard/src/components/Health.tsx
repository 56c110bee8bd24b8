import type { Status } from '../api.ts';
import { Readiness } from './Readiness.tsx';

export function Health({ status }: { status: Status | null }) {
  if (!status) return <p className="health">Checking the services…</p>;
  const { outbox, deadLetters, queues } = status;
  const dead = Object.values(deadLetters ?? {}).reduce((a, b) => a + b, 0);
  const waiting = Object.entries(queues ?? {}).filter(([, n]) => n > 0);
  return (
    <ul className="health" aria-label="Health">
      {/* Ready without the broker, a service still serves (the outbox keeps the events): degraded. */}
      {status.services.map((s) => (
        <Readiness key={s.name} label={s.name === 'orders' ? 'Order Service' : 'Inventory Service'} part={s} />
      ))}
      {/* With one service down, the gateway still serves the other's half of the graph: degraded. */}
      <Readiness label="Gateway" part={status.gateway} />
      {/* The details are an admin's (with authentication on); anyone else sees only what is ready. */}
      {outbox && deadLetters && (
        <>
          <li className={status.services.every((s) => s.checks?.broker === 'up') ? 'ok' : 'down'}>
            Broker: {status.services.every((s) => s.checks?.broker === 'up') ? 'connected' : 'unreachable'}
          </li>
          <li className={outbox.orders + outbox.inventory > 1000 ? 'warn' : 'ok'}>
            Outbox backlog: {outbox.orders} orders, {outbox.inventory} inventory
          </li>
          <li className={waiting.reduce((total, [, n]) => total + n, 0) > 1000 ? 'warn' : 'ok'} data-field="queues">
            Waiting in queues: {waiting.length === 0 ? 'none' : waiting.map(([queue, n]) => `${n} in ${queue}`).join(', ')}
          </li>
          <li className={dead > 0 ? 'warn' : 'ok'}>Dead letters: {dead}</li>
        </>
      )}
    </ul>
  );
}
