export { graphqlClient, type GraphqlClient, type GraphqlResponse } from '@stockflow/client';

/**
 * Polls `fn` until `accept` holds. A call that throws counts as "not yet" (a service may be
 * refusing requests during an outage); the last value or error is reported on timeout.
 */
export async function eventually<T>(fn: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 15_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let last: string;
    try {
      const value = await fn();
      if (accept(value)) return value;
      last = `last value: ${JSON.stringify(value)}`;
    } catch (error) {
      last = `last error: ${(error as Error).message}`;
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; ${last}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Subscribes over GraphQL SSE (what a browser's EventSource-style client does) and collects each
 * `next` payload's data.
 */
export async function sseSubscribe<T>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
) {
  const controller = new AbortController();
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
    body: JSON.stringify({ query, variables }),
    signal: controller.signal,
  });
  if (!res.ok || !res.body) throw new Error(`subscription refused: HTTP ${res.status} ${await res.text()}`);
  const events: T[] = [];
  const errors: unknown[] = [];
  /** Whether the server ended the stream (a `complete` event, or the response's end), and not this side. */
  let completed = false;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const ended = (async () => {
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          completed = true;
          return;
        }
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (block.split('\n').includes('event: complete')) completed = true;
          const data = block
            .split('\n')
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trim())
            .join('');
          if (!data) continue;
          const payload = JSON.parse(data) as { data?: T; errors?: unknown[] };
          if (payload.errors) errors.push(...payload.errors);
          if (payload.data) events.push(payload.data);
        }
      }
    } catch {
      /* aborted */
    }
  })();
  return {
    events,
    errors,
    /** Resolves when the stream ends, whichever side ended it. */
    ended,
    get completed() {
      return completed;
    },
    waitFor: (accept: (events: T[]) => boolean, timeoutMs = 20_000) =>
      eventually(
        () => Promise.resolve(events),
        (list) => accept(list),
        timeoutMs,
        50,
      ),
    close: () => controller.abort(),
  };
}
