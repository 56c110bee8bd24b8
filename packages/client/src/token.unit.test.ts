import { describe, expect, it } from 'vitest';
import { createAuthenticator } from '@stockflow/platform';
import { signToken } from './token.ts';

describe('signToken', () => {
  const secret = 'a-unit-test-secret-of-at-least-32-chars';
  const authenticator = createAuthenticator({ AUTH_JWT_SECRET: secret, AUTH_DISABLED: 'false' });

  it('signs a token the services accept, with its subject and role', async () => {
    const token = await signToken(secret, { sub: 'alice', role: 'customer' });
    expect(await authenticator.authenticate(`Bearer ${token}`)).toEqual({ open: false, sub: 'alice', role: 'customer' });
  });

  it('signs a token that expires after the time asked for', async () => {
    const token = await signToken(secret, { sub: 'alice', role: 'admin' }, '-1s');
    await expect(authenticator.authenticate(`Bearer ${token}`)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });
});
