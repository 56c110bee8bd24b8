/** How an answer is written: one JSON document, or server-sent events (a subscription's stream). */
export type AnswerFormat = 'json' | 'sse';

const FORMATS: Readonly<Record<string, AnswerFormat>> = {
  'application/json': 'json',
  'application/graphql-response+json': 'json',
  'application/*': 'json',
  '*/*': 'json',
  'text/event-stream': 'sse',
};

/** Accept headers repeat (each client sends its own, always the same): each is read once. */
const negotiated = new Map<string, AnswerFormat | undefined>();
const NEGOTIATED_CACHE_SIZE = 100;

/**
 * The format an Accept header asks for: the acceptable media range with the highest q-value,
 * the first of those with the same; JSON without an Accept header. Undefined when nothing we
 * write is acceptable (406).
 */
export function negotiateFormat(accept: string | undefined): AnswerFormat | undefined {
  if (!accept) return 'json';
  if (negotiated.has(accept)) return negotiated.get(accept);
  let best: AnswerFormat | undefined;
  let bestQ = 0;
  for (const range of accept.split(',')) {
    const [type = '', ...parameters] = range.split(';');
    const format = FORMATS[type.trim().toLowerCase()];
    if (!format) continue;
    let q = 1;
    for (const parameter of parameters) {
      const [name = '', value = ''] = parameter.split('=');
      if (name.trim().toLowerCase() === 'q') q = Number(value.trim());
    }
    // q=0 is "not acceptable"; a q that is not a number is taken as one.
    if (Number.isNaN(q)) q = 1;
    if (q > bestQ) {
      best = format;
      bestQ = q;
    }
  }
  if (negotiated.size >= NEGOTIATED_CACHE_SIZE) negotiated.delete(negotiated.keys().next().value as string);
  negotiated.set(accept, best);
  return best;
}
