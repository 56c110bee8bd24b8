import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  customerScope,
  createAuthenticator,
  EXAMPLE_SECRETS,
  may,
  OPEN_ACCESS,
  PERMISSIONS,
  requirePermission,
  type Access,
  type Role,
} from './auth.ts';
import { ConfigError } from './errors.ts';

/** An HS256 token as the token CLI signs it (the client package's signToken, which depends on this one). */
const signToken = (secret: string, claims: { sub: string; role: Role }, expiresIn = '12h') =>
  new SignJWT({ role: claims.role })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(new TextEncoder().encode(secret));

describe('authenticator', () => {
  const secret = 'a-unit-test-secret-of-at-least-32-chars';
  const hs256 = createAuthenticator({ AUTH_JWT_SECRET: secret, AUTH_DISABLED: 'false' });

  it('accepts a token it signed and reads its subject and role', async () => {
    const token = await signToken(secret, { sub: 'alice', role: 'customer' });
    expect(await hs256.authenticate(`Bearer ${token}`)).toEqual({ open: false, sub: 'alice', role: 'customer' });
  });

  it('accepts a payments token', async () => {
    const token = await signToken(secret, { sub: 'psp-webhook', role: 'payments' });
    expect(await hs256.authenticate(`Bearer ${token}`)).toEqual({ open: false, sub: 'psp-webhook', role: 'payments' });
  });

  it.each([
    ['no header', undefined],
    ['another scheme', 'Basic YWxpY2U6c2VjcmV0'],
    ['a token signed with another secret', 'other'],
    ['an unknown role', 'role'],
    ['an expired token', 'expired'],
  ])('refuses %s with UNAUTHENTICATED', async (_label, kind) => {
    let header = kind;
    if (kind === 'other') header = `Bearer ${await signToken('another-secret-of-at-least-32-characters', { sub: 'a', role: 'admin' })}`;
    if (kind === 'role') {
      header = `Bearer ${await new SignJWT({ role: 'root' }).setProtectedHeader({ alg: 'HS256' }).setSubject('a').setExpirationTime('1h').sign(new TextEncoder().encode(secret))}`;
    }
    if (kind === 'expired') header = `Bearer ${await signToken(secret, { sub: 'a', role: 'admin' }, '-1s')}`;
    await expect(hs256.authenticate(header)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('refuses to be built without a secret or a JWKS URL, unless switched off or optional', () => {
    expect(() => createAuthenticator({ AUTH_DISABLED: 'false' })).toThrow(/authentication is not configured/);
    expect(createAuthenticator({ AUTH_DISABLED: 'true' }).mode).toBe('disabled');
    expect(createAuthenticator({ AUTH_DISABLED: 'false' }, { optional: true }).mode).toBe('disabled');
    expect(() => createAuthenticator({ AUTH_JWT_SECRET: secret, AUTH_JWKS_URL: 'https://x/jwks', AUTH_DISABLED: 'false' })).toThrow(
      /not both/,
    );
  });

  it('refuses an example secret, exactly as shipped or any placeholder, and says how to make one', () => {
    const refused = (secret: string) => () => createAuthenticator({ AUTH_JWT_SECRET: secret, AUTH_DISABLED: 'false' });
    for (const secret of [
      ...EXAMPLE_SECRETS,
      // What .env.example shipped until it shipped none: still in .env files copied from it.
      'change-me-to-a-long-random-secret-of-32-chars-or-more',
      `${EXAMPLE_SECRETS[0]}\r`,
      'please-CHANGE-ME-this-is-not-a-secret-at-all',
      'changeme-changeme-changeme-changeme',
      'replace-me-with-something-random-and-long-enough',
      'placeholder-secret-for-the-staging-environment',
    ]) {
      expect(refused(secret), secret).toThrow(/AUTH_JWT_SECRET: is an example value.*openssl rand/);
      expect(refused(secret)).toThrow(ConfigError);
    }
    expect(refused(secret)).not.toThrow();
  });

  describe('with keys from a JWKS URL', () => {
    let server: Server;
    let jwksUrl: string;
    let sign: (claims: { sub: string; role: string }, issuer?: string) => Promise<string>;
    beforeAll(async () => {
      const { publicKey, privateKey } = await generateKeyPair('ES256');
      const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
      server = createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ keys: [jwk] }));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
      sign = (claims, issuer = 'https://id.example') =>
        new SignJWT({ role: claims.role })
          .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
          .setSubject(claims.sub)
          .setIssuer(issuer)
          .setExpirationTime('5m')
          .sign(privateKey);
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('verifies tokens signed by the identity provider, and checks the issuer', async () => {
      const auth = createAuthenticator({ AUTH_JWKS_URL: jwksUrl, AUTH_JWT_ISSUER: 'https://id.example', AUTH_DISABLED: 'false' });
      expect(await auth.authenticate(`Bearer ${await sign({ sub: 'ops', role: 'admin' })}`)).toEqual({
        open: false,
        sub: 'ops',
        role: 'admin',
      });
      await expect(auth.authenticate(`Bearer ${await sign({ sub: 'ops', role: 'admin' }, 'https://evil.example')}`)).rejects.toMatchObject({
        code: 'UNAUTHENTICATED',
      });
      await expect(auth.authenticate(`Bearer ${await signToken(secret, { sub: 'ops', role: 'admin' })}`)).rejects.toMatchObject({
        code: 'UNAUTHENTICATED',
      });
    });
  });
});

describe('the role model', () => {
  const as = (role: Role): Access => ({ open: false, sub: 'someone', role });

  it('lets open access (authentication off) and an admin do everything, for every customer', () => {
    for (const access of [OPEN_ACCESS, as('admin')]) {
      for (const permission of PERMISSIONS) {
        expect(may(access, permission), permission).toBe(true);
        expect(customerScope(access, permission, 'x'), permission).toBeUndefined();
      }
    }
  });

  it('keeps a customer to its own orders, and to what a customer may do', () => {
    const customer = as('customer');
    for (const permission of ['placeOrders', 'readOrder', 'listOrders', 'followOrders', 'cancelOrders'] as const) {
      expect(customerScope(customer, permission, 'x'), permission).toBe('someone');
      expect(may(customer, permission), permission).toBe(false);
    }
    expect(may(customer, 'readCatalog')).toBe(true);
    for (const permission of ['manageCatalog', 'fulfilOrders', 'recordPayments', 'operate'] as const) {
      expect(() => requirePermission(customer, permission, 'do it'), permission).toThrow(/the customer role may not do it/);
    }
  });

  it('gives the payments role recordPayment and any order by id, and no customer reach for its sub', () => {
    const payments = as('payments');
    expect(() => requirePermission(payments, 'recordPayments', 'record payments')).not.toThrow();
    expect(customerScope(payments, 'readOrder', 'read orders')).toBeUndefined();
    for (const permission of PERMISSIONS.filter((p) => p !== 'recordPayments' && p !== 'readOrder')) {
      expect(may(payments, permission), permission).toBe(false);
      expect(() => customerScope(payments, permission, 'do it'), permission).toThrow(
        expect.objectContaining({ code: 'FORBIDDEN', message: 'the payments role may not do it' }) as Error,
      );
    }
  });
});
