import { parseArgs, type ParseArgsConfig } from 'node:util';
import { z } from 'zod';

/**
 * Parses a tool's flags and validates them with zod, so `--orders ten` fails with a sentence
 * naming the flag instead of a stack trace. `--help` prints the usage. `argv` is the command line
 * after a mode word a tool has already taken off (`simulate payments`).
 */
export function parseCli<S extends z.ZodObject>(
  usage: string,
  options: ParseArgsConfig['options'],
  schema: S,
  argv: string[] = process.argv.slice(2),
): z.infer<S> {
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
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

/** A flag that takes a share, from 0 to 1. */
export const fraction = z.coerce.number({ error: 'must be a number' }).min(0, 'must be from 0 to 1').max(1, 'must be from 0 to 1');

/**
 * Fails with a sentence when a service's GraphQL API cannot be reached, or refuses the token (or
 * its absence), before a tool starts work that would only fail later, request by request.
 */
export async function requireApi(name: string, url: string, token: string | undefined, tokenHint: string): Promise<void> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: '{"query":"{ __typename }"}',
    });
    if (res.status === 401) {
      fail(
        `the ${name} at ${url} requires a token${token ? ' and refused this one' : ''}: pass --token or set STOCKFLOW_TOKEN (${tokenHint})`,
      );
    }
    if (!res.ok) fail(`the ${name} at ${url} answered HTTP ${res.status}`);
  } catch (error) {
    fail(
      `cannot reach the ${name} at ${url} (${(error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message}); is the platform running (npm start)?`,
    );
  }
}
