import { parseArgs, type ParseArgsConfig } from 'node:util';
import { z } from 'zod';

/**
 * Parses a tool's flags and validates them with zod, so `--orders ten` fails with a sentence
 * naming the flag instead of a stack trace. `--help` prints the usage.
 */
export function parseCli<S extends z.ZodObject>(usage: string, options: ParseArgsConfig['options'], schema: S): z.infer<S> {
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }));
  } catch (error) {
    fail(`${(error as Error).message}\n\n${usage}`);
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const parsed = schema.safeParse(values);
  if (!parsed.success) {
    fail(`${parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('\n')}\n\n${usage}`);
  }
  return parsed.data;
}

/**
 * A tool taking a command word and flags (`npm run dlq -- list <queue>`): the positionals and the
 * flags, a sentence and the usage on a bad flag, the usage on --help.
 */
export function parseCommand<O extends NonNullable<ParseArgsConfig['options']>>(usage: string, options: O) {
  let parsed;
  try {
    parsed = parseArgs({ allowPositionals: true, strict: true, options: { ...options, help: { type: 'boolean', short: 'h' } } });
  } catch (error) {
    fail(`${(error as Error).message}\n\n${usage}`);
  }
  if ((parsed.values as { help?: boolean }).help) {
    console.log(usage);
    process.exit(0);
  }
  return parsed;
}

export function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

/** A flag that takes a whole number up to `max`: positive, or from 0 when `zero` is allowed. */
export const wholeNumber = (max: number, { zero = false } = {}) =>
  z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(zero ? 0 : 1, zero ? 'must be 0 or more' : 'must be positive')
    .max(max, `must be at most ${max}`);
