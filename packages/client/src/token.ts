import { SignJWT } from 'jose';
import type { Role } from '@stockflow/platform';

/** Signs an HS256 token (the token CLI and tests). */
export function signToken(secret: string, claims: { sub: string; role: Role }, expiresIn = '12h'): Promise<string> {
  return new SignJWT({ role: claims.role })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(new TextEncoder().encode(secret));
}
