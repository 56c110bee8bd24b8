import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { safeUrl } from '@stockflow/observability';
import { loadConfig, parseBrokerUrls, serviceConfigShape } from './config.ts';
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
    ['an IPv6 address and a bad port', 'AMQP_URL', `amqp://app:${PASSWORD}@[::1]:99999`],
    ['an IPv6 address and a raw slash in the password', 'AMQP_URL', `amqp://app:12/${PASSWORD}@[::1]:5672`],
    ['a list of IPv6 nodes with different passwords', 'AMQP_URL', `amqp://app:${PASSWORD}@[::1],amqp://app:x${PASSWORD}@[2001:db8::2]`],
    ['raw , @ : in the password and a bad port', 'AMQP_URL', `amqp://app:a,b@c:${PASSWORD}@[::1]:99999`],
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

  it('show an IPv6 host whole, brackets and colons, and mask only the password', () => {
    expect(refusal({ AMQP_URL: 'amqp://[::1]:99999' })).toContain('"amqp://[::1]:99999"');
    expect(refusal({ AMQP_URL: `amqp://app:${PASSWORD}@[::1]:99999` })).toContain('"amqp://app:***@[::1]:99999"');
    expect(refusal({ AMQP_URL: `amqp://app:a,b@c:${PASSWORD}@[2001:db8::1]:99999` })).toContain('"amqp://app:***@[2001:db8::1]:99999"');
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

describe('AMQP_URL: parseBrokerUrls', () => {
  const nodes = (value: string) => parseBrokerUrls(value).map((n) => n.node);
  const refused = (value: string) => {
    try {
      parseBrokerUrls(value);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as Error).message;
    }
    throw new Error(`accepted: ${value}`);
  };

  it.each([
    ['amqp://u:p@[::1]:5672', [{ host: '::1', port: 5672 }]],
    ['amqp://u:p@[::1]', [{ host: '::1', port: 5672 }]],
    ['amqps://u:p@[::1]', [{ host: '::1', port: 5671 }]],
    ['amqp://[2001:DB8:0:0::7]:5690/vh', [{ host: '2001:db8::7', port: 5690 }]],
    ['amqp://u:p@127.0.0.1', [{ host: '127.0.0.1', port: 5672 }]],
    ['amqp://u:p@rabbit.example.com:1', [{ host: 'rabbit.example.com', port: 1 }]],
    ['amqps://u:p@rabbit:65535/', [{ host: 'rabbit', port: 65_535 }]],
    [
      'amqp://u:p@rabbit-0:5681, amqp://u:p@[::1]:5682,amqp://u:p@10.0.0.3,amqp://u:p@[fe80::1]',
      [
        { host: 'rabbit-0', port: 5681 },
        { host: '::1', port: 5682 },
        { host: '10.0.0.3', port: 5672 },
        { host: 'fe80::1', port: 5672 },
      ],
    ],
  ])('reads %s', (value, expected) => {
    expect(nodes(value)).toEqual(expected);
    expect(loadConfig(schema, { AMQP_URL: value }).AMQP_URL).toBe(value);
  });

  // What the client will log in with: it percent-decodes the user and password of the first URL.
  const credentials = (value: string) => {
    const u = new URL(parseBrokerUrls(value)[0]?.url as string);
    return [decodeURIComponent(u.username), decodeURIComponent(u.password)];
  };

  it('takes , @ : in a password percent-encoded, or raw (the last @ ends it, a , ends a URL only before a scheme)', () => {
    expect(credentials('amqp://app:p%2Cq%40r%3As@[::1]:5672')).toEqual(['app', 'p,q@r:s']);
    expect(credentials('amqp://app:p,q@r:s@[::1]:5672')).toEqual(['app', 'p,q@r:s']);
    expect(credentials('amqp://us%3Aer:p@rabbit')).toEqual(['us:er', 'p']);
    const list = parseBrokerUrls('amqp://app:p,q@r:s@[::1]:5681,amqp://app:p,q@r:s@rabbit-1:5682');
    expect(list.map((n) => n.node)).toEqual([
      { host: '::1', port: 5681 },
      { host: 'rabbit-1', port: 5682 },
    ]);
    expect(credentials(list[1]?.url as string)).toEqual(['app', 'p,q@r:s']);
  });

  it.each([
    ['amqp://app:12/pw@rabbit', "a '/', '?' or '#' in the user or password must be percent-encoded (%2F, %3F, %23)"],
    ['amqp://app:ab/cd@[::1]:5672', "a '/', '?' or '#' in the user or password must be percent-encoded"],
    ['amqp://app:p?w@rabbit', "a '/', '?' or '#' in the user or password must be percent-encoded"],
    ['amqp://app:p#w@rabbit', "a '/', '?' or '#' in the user or password must be percent-encoded"],
    ['amqp://app:100%@rabbit', "a '%' in the user or password must begin percent-encoded UTF-8"],
    ['amqp://app:p%e9@rabbit', "a '%' in the user or password must begin percent-encoded UTF-8"],
    ['amqp://[::1', 'must be a URL starting with amqp:// or amqps://'],
    ['amqp://[::g]:5672', 'must be a URL starting with amqp:// or amqps://'],
    ['amqp://::1:5672', 'must be a URL starting with amqp:// or amqps://'],
    ['amqp://u:p@[::1]:70000', 'must be a URL starting with amqp:// or amqps://'],
    ['amqp://u:p@[::1]:0', 'port must be from 1 to 65535'],
    ['amqp:///vhost', 'names no host'],
    ['http://u:p@[::1]', 'must be a URL starting with amqp:// or amqps://'],
    ['amqp://u:p@[::1],amqps://u:p@[::2]', 'the URLs of a list must differ only in host and port'],
    ['amqp://u:p@[::1]/a,amqp://u:p@[::2]/b', 'the URLs of a list must differ only in host and port'],
  ])('refuses %s: %s', (value, message) => {
    expect(refused(value)).toContain(message);
    expect(refusal({ AMQP_URL: value })).toContain(message);
  });

  it('names the URL of a list that is wrong, without its password', () => {
    const message = refused(`amqp://u:${PASSWORD}@[::1],amqp://u:${PASSWORD}@[::2]:0`);
    expect(message).toBe('"amqp://[::2]:0": port must be from 1 to 65535');
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
