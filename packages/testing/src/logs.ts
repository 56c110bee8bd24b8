import { Writable } from 'node:stream';
import { createLogger, type Logger } from '@stockflow/observability';

/** A debug-level logger whose JSON lines are kept in `lines` for the test to read. */
export function capturingLogger(name: string, lines: Record<string, unknown>[]): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return createLogger({ name, level: 'debug', destination: sink });
}
