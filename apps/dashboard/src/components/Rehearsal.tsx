import { useState } from 'react';
import { fetchRehearsal, startRehearsal, type RehearsalState } from '../api.ts';
import { message } from '../format.ts';
import { usePoll } from '../use-poll.ts';

export function Rehearsal({ onError }: { onError: (m: string) => void }) {
  const [orders, setOrders] = useState(500);
  const [rate, setRate] = useState(100);
  const [state, setState] = useState<RehearsalState>({ running: false });
  usePoll(async () => setState(await fetchRehearsal()), 1_000, []);
  const p = state.progress;
  const r = state.report;
  return (
    <section aria-labelledby="rehearsal-title">
      <h2 id="rehearsal-title">Black-Friday rehearsal</h2>
      <form
        className="place"
        onSubmit={(e) => {
          e.preventDefault();
          startRehearsal(orders, rate).then(
            () => setState({ running: true, progress: null }),
            (err: unknown) => onError(message(err)),
          );
        }}
      >
        <label>
          Orders
          <input type="number" min={1} max={20000} value={orders} onChange={(e) => setOrders(Number(e.target.value))} />
        </label>
        <label>
          Per second
          <input type="number" min={1} max={5000} value={rate} onChange={(e) => setRate(Number(e.target.value))} />
        </label>
        <button type="submit" disabled={state.running}>
          {state.running ? 'Running…' : 'Start rehearsal'}
        </button>
      </form>
      <p aria-live="polite">
        {p &&
          `${Math.round(p.elapsedMs / 1000)} s: sent ${p.sent}, accepted ${p.accepted}, confirmed ${p.confirmed}, cancelled ${p.cancelled}, pending ${p.pending}`}
      </p>
      {r && (
        <p className={r.ok ? 'ok' : 'down'}>
          {r.accepted} accepted ({r.acceptedPerSecond.toFixed(0)}/s), completed {r.completedPerSecond.toFixed(0)}/s, latency p50{' '}
          {Math.round(r.latencyMs.p50)} ms / p99 {Math.round(r.latencyMs.p99)} ms, {r.outcomes.CONFIRMED} confirmed, {r.outcomes.CANCELLED}{' '}
          cancelled, {r.stuck} stuck, audit {r.audit}.
        </p>
      )}
      {state.error && <p role="alert">{state.error}</p>}
    </section>
  );
}
