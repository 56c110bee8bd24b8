import type { Status } from '../api.ts';

/** One part's readiness: ready while it serves; degraded when something it uses is down (named). */
export function Readiness({ label, part }: { label: string; part: Pick<Status['gateway'], 'ready' | 'checks'> }) {
  const down = Object.entries(part.checks ?? {}).filter(([, v]) => v !== 'up');
  return (
    <li className={!part.ready ? 'down' : down.length > 0 ? 'warn' : 'ok'}>
      {label}: {!part.ready ? 'not ready' : down.length > 0 ? 'ready, degraded' : 'ready'}
      {down.length > 0 ? ` (${down.map(([k]) => `${k} down`).join(', ')})` : ''}
    </li>
  );
}
