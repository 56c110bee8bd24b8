import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadConfig, safeUrl, serviceConfigShape } from './config.ts';
import { ConfigError } from './errors.ts';

const schema = z.object(serviceConfigShape);
const PASSWORD = 'S3cretPw';

/** The message loadConfig fails with. */
function refusal(source: NodeJS.ProcessEnv, of: z.ZodObject = schema): string {
  try {
    loadConfig(of, source);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error(`accepted: ${JSON.stringify(source)}`);
}

describe('configuration errors', () => {
  // Each is refused; none may show the password, or a piece of it, in the message.
  const invalid: [string, string, string][] = [
    ['a bad port', 'DATABASE_URL', `postgres://app:${PASSWORD}@db:99999/orders`],
    ['another scheme', 'DATABASE_URL', `mysql://app:${PASSWORD}@db/orders`],
    ['a scheme that cannot parse', 'DATABASE_URL', `postgres_ql://app:${PASSWORD}@db/orders`],
    ['no scheme', 'DATABASE_URL', `app:${PASSWORD}@db:5432/orders`],
    ['no host', 'DATABASE_URL', `postgres://app:${PASSWORD}`],
    ['a byte-order mark (a file saved by a Windows editor)', 'DATABASE_URL', `\uFEFFpostgres://app:${PASSWORD}@db/orders`],
    ['a line break in the password, and a bad port', 'DATABASE_URL', `postgres://app:S3cret\nPw@db:99999/orders`],
    ['the password as a parameter', 'DATABASE_URL', `postgres://app@db:99999/orders?sslmode=require&password=${PASSWORD}`],
    ['another scheme', 'AMQP_URL', `http://app:${PASSWORD}@rabbit:5672`],
    ['a bad port in a list', 'AMQP_URL', `amqp://app:${PASSWORD}@rabbit-0:5672,amqp://app:${PASSWORD}@rabbit-1:99999`],
    ['a password with an unencoded slash', 'AMQP_URL', `amqp://app:12/${PASSWORD}@rabbit-0,http://app:12/${PASSWORD}@rabbit-1`],
  ];
  const leak = /S3cret|cretPw|12\//;

  it.each(invalid)('never show the password of a URL with %s (%s)', (_label, variable, value) => {
    const message = refusal({ [variable]: value });
    expect(message).toContain(`${variable} (`);
    expect(message).not.toMatch(leak);
  });

  it.each(invalid)('nor when the URL with %s (%s) is read from a file', (_label, variable, value) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'stockflow-config-'));
    writeFileSync(path.join(dir, 'url'), `${value}\n`);
    const message = refusal({ [`${variable}_FILE`]: path.join(dir, 'url') });
    expect(message).toContain(`${variable} (`);
    expect(message).not.toMatch(leak);
  });

  it('show what helps, without the secret: scheme, user, host and port', () => {
    expect(refusal({ DATABASE_URL: `postgres://app:${PASSWORD}@db:99999/orders` })).toContain('"postgres://app:***@db:99999/orders"');
    expect(refusal({ DATABASE_URL: `postgres://app@db:99999/orders?password=${PASSWORD}` })).toContain('password=***');
  });

  it('never show the value of a variable named as a secret, whatever its schema says', () => {
    const message = refusal({ SIGNING_SECRET: 'short-but-still-secret' }, z.object({ SIGNING_SECRET: z.string().min(32, 'too short') }));
    expect(message).toBe('Invalid configuration:\n  SIGNING_SECRET (set): too short');
  });
});

describe('safeUrl', () => {
  it('prints scheme, host, port and path, never a password, even one a URL parser takes for a path', () => {
    expect(safeUrl(`postgres://app:${PASSWORD}@db:5432/orders?sslmode=require`)).toBe('postgres://db:5432/orders');
    for (const url of [`postgres://app:12/${PASSWORD}@db/orders`, `amqp://app:/${PASSWORD}@rabbit`, `amqp://app:12?${PASSWORD}@rabbit`]) {
      expect(safeUrl(url)).not.toMatch(/S3cret|12/);
    }
    expect(safeUrl(`amqp://app:p,${PASSWORD}@rabbit-0:5672,amqp://app:p,${PASSWORD}@rabbit-1:5672`)).toBe(
      'amqp://rabbit-0:5672,amqp://rabbit-1:5672',
    );
  });
});

describe('AUTH_JWKS_URL', () => {
  it.each([
    'https://id.example.com/.well-known/jwks.json',
    'http://127.0.0.1:8080/jwks',
    'http://localhost/jwks',
    'http://[::1]:9000/jwks',
  ])('accepts %s', (url) => {
    expect(loadConfig(schema, { AUTH_JWKS_URL: url }).AUTH_JWKS_URL).toBe(url);
  });

  it.each(['http://id.example.com/jwks', 'http://127.0.0.1.nip.io/jwks', 'http://localhost.example.com/jwks', 'ftp://id.example.com/jwks'])(
    'refuses %s: keys fetched over plain http could be swapped on the way',
    (url) => {
      expect(refusal({ AUTH_JWKS_URL: url })).toBe(
        `Invalid configuration:\n  AUTH_JWKS_URL ("${url}"): must be an https:// URL (http:// only for localhost, 127.0.0.1 or [::1])`,
      );
    },
  );
});
