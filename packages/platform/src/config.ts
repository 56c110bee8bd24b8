import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { QUEUE_TYPES } from '@stockflow/contracts';
import { safeUrl, splitUrlList } from '@stockflow/observability';
import { ConfigError } from './errors.ts';

/**
 * Reads a service's configuration from the environment through a zod schema whose keys are the
 * variable names, and fails with one message naming every bad variable.
 */
export function loadConfig<S extends z.ZodObject>(schema: S, source: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const env = withSecretFiles(schema, source);
  const parsed = schema.safeParse(env);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const variable = issue.path.join('.');
    const value = env[variable];
    const text = value === undefined ? undefined : withoutPasswords(value);
    let shown = text === undefined ? 'unset' : `"${text.length > 60 ? `${text.slice(0, 60)}…` : text}"`;
    if (value !== undefined && SECRET_NAME.test(variable)) shown = 'set';
    return `  ${variable} (${shown}): ${value === undefined ? 'is required' : issue.message}`;
  });
  return fail(`Invalid configuration:\n${problems.join('\n')}`);
}

/**
 * Secrets may come from files (Docker and Kubernetes secrets): `X_FILE=/run/secrets/x` sets X to
 * the file's content, for every option X of the schema. Setting both X and X_FILE is an error.
 */
function withSecretFiles(schema: z.ZodObject, source: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env = { ...source };
  for (const key of Object.keys(schema.shape)) {
    const file = source[`${key}_FILE`];
    if (file === undefined) continue;
    if (source[key] !== undefined) fail(`Invalid configuration:\n  ${key} and ${key}_FILE: set one of them, not both`);
    try {
      env[key] = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      fail(`Invalid configuration:\n  ${key}_FILE ("${file}"): cannot be read: ${(error as Error).message}`);
    }
  }
  return env;
}

/** One node of a broker URL: the host as a socket takes it (an IPv6 address without its brackets) and its port. */
export interface BrokerNode {
  host: string;
  port: number;
}

/**
 * Reads a broker URL, or a cluster's nodes' URLs separated by commas, into each node's URL and
 * host; throws a ConfigError saying what is wrong (never with the password) otherwise. Hosts may be
 * names, IPv4 or IPv6 addresses (in brackets, `amqp://[::1]:5672`), ports default to 5672 (amqps:
 * 5671).
 *
 * In the user and password anything may be percent-encoded, and `:` `@` `,` may also be written as
 * they are, since a URL parser still reads them: the first `:` ends the user, the last `@` before
 * the host ends the password, and a `,` begins another URL only when a scheme follows it. A raw
 * `/` `?` or `#` is refused, since it ends the host early (what follows would be taken for the
 * vhost), as is a `%` that does not begin UTF-8 percent-encoding, which the client could not
 * decode when it connects.
 */
export function parseBrokerUrls(value: string): { url: string; node: BrokerNode }[] {
  const urls = splitUrlList(value);
  const nodes = urls.map((url) => {
    const refuse = (why: string): never => fail(`${urls.length > 1 ? `"${safeUrl(url)}": ` : ''}${why}`);
    const afterScheme = url.includes('://') ? url.slice(url.indexOf('://') + 3) : '';
    if (/[/?#].*@/.test(afterScheme)) {
      refuse("a '/', '?' or '#' in the user or password must be percent-encoded (%2F, %3F, %23), as must an '@' after the host (%40)");
    }
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return refuse(`must be a URL starting with amqp:// or amqps://, or several separated by commas ("${safeUrl(url)}" is not)`);
    }
    if (u.protocol !== 'amqp:' && u.protocol !== 'amqps:') {
      refuse(`must be a URL starting with amqp:// or amqps://, or several separated by commas ("${safeUrl(url)}" is not)`);
    }
    if (u.hostname === '') refuse('names no host (amqp://user:password@host:port/vhost)');
    if (u.port === '0') refuse('port must be from 1 to 65535');
    try {
      decodeURIComponent(u.username);
      decodeURIComponent(u.password);
    } catch {
      refuse("a '%' in the user or password must begin percent-encoded UTF-8 (two hexadecimal digits; write '%' itself as %25)");
    }
    return {
      url,
      parsed: u,
      node: {
        host: u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname,
        port: Number(u.port || (u.protocol === 'amqps:' ? 5671 : 5672)),
      },
    };
  });
  // One connection's settings apply to every node it may move to.
  const settings = (u: URL) => `${u.protocol}//${u.username}:${u.password}@${u.pathname}${u.search}`;
  if (nodes.some((n) => settings(n.parsed) !== settings((nodes[0] as { parsed: URL }).parsed))) {
    fail('the URLs of a list must differ only in host and port (same scheme, user, password, vhost)');
  }
  return nodes.map(({ url, node }) => ({ url, node }));
}

/** Variables whose value is shown in no error, whatever their schema. */
const SECRET_NAME = /SECRET|PASSWORD|TOKEN|PRIVATE_KEY/i;

/** Every URL's password masked, so a config error never prints one. */
const withoutPasswords = (value: string) => splitUrlList(value).map(withoutPassword).join(',');

/**
 * Masks by position, not by parsing: the value being shown is often one that does not parse.
 * Everything from the first `:` after the scheme (or the start, when it has none) to the last
 * `@` goes, or, without an `@` in a URL that does not parse, to the end of the host part (which
 * may then be `user:password` with the host left out, unless it is an IPv6 address in brackets,
 * whose colons are its own); and any `password=` parameter.
 */
function withoutPassword(url: string): string {
  const start = url.includes('://') ? url.indexOf('://') + 3 : 0;
  const at = url.lastIndexOf('@');
  let end = at;
  if (at < start) {
    end = start > 0 && !URL.canParse(url) && url[start] !== '[' ? start + (/^[^/?#]*/.exec(url.slice(start))?.[0].length ?? 0) : -1;
  }
  const colon = url.indexOf(':', start);
  const masked = end >= 0 && colon >= 0 && colon < end ? `${url.slice(0, colon)}:***${url.slice(end)}` : url;
  return masked.replace(/(password=)[^&#]*/gi, '$1***');
}

function fail(message: string): never {
  throw new ConfigError(message);
}

const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'];

/** Building blocks for config schemas, so every service reads the same variables the same way. */
export const env = {
  port: (fallback: number) =>
    z.coerce.number({ error: 'must be a port number' }).int('must be a port number').min(0).max(65_535).default(fallback),
  positiveInt: (fallback: number) =>
    z.coerce.number({ error: 'must be a whole number' }).int('must be a whole number').positive('must be positive').default(fallback),
  url: (protocols: string[]) =>
    z.string().refine(
      (value) => {
        try {
          return protocols.includes(new URL(value).protocol.replace(/:$/, ''));
        } catch {
          return false;
        }
      },
      `must be a URL starting with ${protocols.map((p) => `${p}://`).join(' or ')}`,
    ),
  /**
   * One broker URL, or several comma-separated (the nodes of one cluster): the service connects
   * to one and moves to the next when it is lost. They share scheme, credentials and vhost, and
   * differ only in host and port, since one connection's settings apply to every node.
   */
  amqpUrls: () =>
    z.string().superRefine((value, ctx) => {
      try {
        parseBrokerUrls(value);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
      }
    }),
  /** An https URL; http only to this machine, where nothing on the way could change what it returns. */
  httpsUrl: () =>
    z.string().refine((value) => {
      try {
        const u = new URL(value);
        return u.protocol === 'https:' || (u.protocol === 'http:' && LOOPBACK_HOSTS.includes(u.hostname));
      } catch {
        return false;
      }
    }, 'must be an https:// URL (http:// only for localhost, 127.0.0.1 or [::1])'),
  /**
   * Origins, comma-separated, each exactly as a browser sends it in `Origin` (scheme, host, port
   * if not the default; no path); empty for none.
   */
  origins: () =>
    z
      .string()
      .default('')
      .refine(
        (value) => listOf(value).every(isOrigin),
        'must be origins such as https://shop.example.com (lower case, no path or trailing slash), separated by commas',
      )
      .transform(listOf),
  logLevel: () => z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  nodeEnv: () => z.enum(['development', 'production', 'test']).default('development'),
};

const listOf = (value: string) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);

function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === value;
  } catch {
    return false;
  }
}

/**
 * The options every service shares (database, broker, consumers, outbox, logs). A service adds
 * its own PORT default and anything specific. DATABASE_URL and AMQP_URL may be left out only when
 * the embedded runner hands the service its database and transport.
 */
export const serviceConfigShape = {
  NODE_ENV: env.nodeEnv(),
  LOG_LEVEL: env.logLevel(),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATABASE_URL: env.url(['postgres', 'postgresql']).optional(),
  DATABASE_POOL_SIZE: env.positiveInt(10),
  AMQP_URL: env.amqpUrls().optional(),
  AMQP_QUEUE_TYPE: z.enum(QUEUE_TYPES).default('quorum'),
  CONSUMER_PREFETCH: env.positiveInt(1_000),
  // Drawn at start unless set: with several instances the one with the highest priority takes
  // the deliveries, and the next one those that overflow its prefetch (see the README).
  CONSUMER_PRIORITY: z.coerce
    .number({ error: 'must be a whole number' })
    .int('must be a whole number')
    .min(0, 'must be between 0 and 1000000')
    .max(1_000_000, 'must be between 0 and 1000000')
    .default(() => randomInt(0, 1_000_001)),
  CONSUMER_BATCH_SIZE: env.positiveInt(250),
  CONSUMER_BATCHES_IN_FLIGHT: env.positiveInt(2),
  OUTBOX_POLL_MS: env.positiveInt(500),
  OUTBOX_BATCH_SIZE: env.positiveInt(500),
  GRAPHIQL: z.enum(['true', 'false']).optional(),
  RETRY_MAX_ATTEMPTS: env.positiveInt(5),
  BREAKER_FAILURE_THRESHOLD: env.positiveInt(3),
  BREAKER_OPEN_MS: env.positiveInt(1_000),
  BREAKER_MAX_OPEN_MS: env.positiveInt(10_000),
  SHUTDOWN_TIMEOUT_MS: env.positiveInt(10_000),
  AUTH_JWT_SECRET: z.string().optional(),
  AUTH_JWKS_URL: env.httpsUrl().optional(),
  AUTH_JWT_ISSUER: z.string().min(1).optional(),
  AUTH_JWT_AUDIENCE: z.string().min(1).optional(),
  AUTH_DISABLED: z.enum(['true', 'false']).default('false'),
  GRAPHQL_INTROSPECTION: z.enum(['true', 'false']).optional(),
  GRAPHQL_MAX_DEPTH: env.positiveInt(10),
  GRAPHQL_MAX_ALIASES: env.positiveInt(20),
  GRAPHQL_MAX_COST: env.positiveInt(200_000),
  GRAPHQL_MAX_TOKENS: env.positiveInt(2_000),
  // The web pages (other than the service's own origin) that may call the API from a browser.
  CORS_ORIGINS: env.origins(),
};

export type ServiceConfig = z.infer<z.ZodObject<typeof serviceConfigShape>> & { PORT: number };

export const graphiqlEnabled = (config: Pick<ServiceConfig, 'NODE_ENV' | 'GRAPHIQL'>) =>
  config.GRAPHIQL ? config.GRAPHIQL === 'true' : config.NODE_ENV !== 'production';
/** Introspection (and a subgraph's SDL to anyone) is off in production unless asked for. */
export const introspectionEnabled = (config: Pick<ServiceConfig, 'NODE_ENV' | 'GRAPHQL_INTROSPECTION'>) =>
  config.GRAPHQL_INTROSPECTION ? config.GRAPHQL_INTROSPECTION === 'true' : config.NODE_ENV !== 'production';
/** The GraphQL limits of a service, or of the gateway (the same settings). */
export const graphqlLimits = (
  config: Pick<
    ServiceConfig,
    'NODE_ENV' | 'GRAPHQL_INTROSPECTION' | 'GRAPHQL_MAX_DEPTH' | 'GRAPHQL_MAX_ALIASES' | 'GRAPHQL_MAX_COST' | 'GRAPHQL_MAX_TOKENS'
  >,
) => ({
  maxDepth: config.GRAPHQL_MAX_DEPTH,
  maxAliases: config.GRAPHQL_MAX_ALIASES,
  maxCost: config.GRAPHQL_MAX_COST,
  maxTokens: config.GRAPHQL_MAX_TOKENS,
  introspection: introspectionEnabled(config),
});
