import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { AppError, ConfigError } from './errors.ts';

export const ROLES = ['admin', 'customer', 'payments'] as const;
export type Role = (typeof ROLES)[number];

/**
 * Who a GraphQL request acts as. `open` is the whole API, when authentication is switched off
 * (the embedded `npm start`, or AUTH_DISABLED=true); otherwise the verified token's subject and
 * role. A customer's subject is its customer id; a payments token's names the payment service.
 */
export type Access = { open: true } | { open: false; sub: string; role: Role };

export const OPEN_ACCESS: Access = { open: true };

export interface AuthSettings {
  AUTH_JWT_SECRET?: string | undefined;
  AUTH_JWKS_URL?: string | undefined;
  AUTH_JWT_ISSUER?: string | undefined;
  AUTH_JWT_AUDIENCE?: string | undefined;
  AUTH_DISABLED: 'true' | 'false';
}

export interface Authenticator {
  /** 'jwt' when tokens are checked; 'disabled' when every request has open access. */
  readonly mode: 'jwt' | 'disabled';
  /** Verifies the Authorization header; throws UNAUTHENTICATED when it is missing or not valid. */
  authenticate(authorization: string | undefined): Promise<Access>;
}

export class UnauthenticatedError extends AppError {
  constructor(message: string) {
    super('UNAUTHENTICATED', message);
  }
}

export class ForbiddenError extends AppError {
  constructor(message: string) {
    super('FORBIDDEN', message);
  }
}

/** Verified tokens kept, so a client sending the same token again costs a map lookup, not a signature check. */
const TOKEN_CACHE_SIZE = 10_000;
const HS256_MIN_SECRET_LENGTH = 32;

/**
 * The example secrets this repository ships or has shipped (.env.example, the Kubernetes example
 * Secret): anyone who has read them could sign an admin token for a service that runs with one.
 * tools/src/deploy.unit.test.ts checks that every secret the repository's files show is here.
 */
export const EXAMPLE_SECRETS: readonly string[] = [
  'change-me-to-a-long-random-secret-of-32-chars-or-more',
  'replace-with-a-random-secret-of-at-least-32-characters',
];
/** What marks a placeholder whichever example it was copied from. */
const PLACEHOLDER = /change-?me|replace-?(with|me)|placeholder/i;

/**
 * The authenticator a service runs with. Tokens are JWTs: HS256 with AUTH_JWT_SECRET, or signed by
 * a key from AUTH_JWKS_URL; `sub` names the user and `role` is one of ROLES. With neither
 * configured a service refuses to start, unless AUTH_DISABLED=true says so explicitly, or the
 * caller allows it (the embedded `npm start`, with `optional`).
 */
export function createAuthenticator(settings: AuthSettings, options: { optional?: boolean } = {}): Authenticator {
  const disabled = settings.AUTH_DISABLED === 'true';
  if (disabled || (options.optional && !settings.AUTH_JWT_SECRET && !settings.AUTH_JWKS_URL)) {
    return { mode: 'disabled', authenticate: () => Promise.resolve(OPEN_ACCESS) };
  }
  let key: Uint8Array | JWTVerifyGetKey;
  let algorithms: string[];
  if (settings.AUTH_JWT_SECRET && settings.AUTH_JWKS_URL) {
    throw new ConfigError('Invalid configuration:\n  AUTH_JWT_SECRET and AUTH_JWKS_URL: set one of them, not both');
  } else if (settings.AUTH_JWT_SECRET) {
    if (settings.AUTH_JWT_SECRET.length < HS256_MIN_SECRET_LENGTH) {
      throw new ConfigError(`Invalid configuration:\n  AUTH_JWT_SECRET: must be at least ${HS256_MIN_SECRET_LENGTH} characters`);
    }
    if (EXAMPLE_SECRETS.includes(settings.AUTH_JWT_SECRET.trim()) || PLACEHOLDER.test(settings.AUTH_JWT_SECRET)) {
      throw new ConfigError(
        'Invalid configuration:\n  AUTH_JWT_SECRET: is an example value, which anyone can sign tokens with: set a random one, e.g. the output of `openssl rand -base64 48`',
      );
    }
    key = new TextEncoder().encode(settings.AUTH_JWT_SECRET);
    algorithms = ['HS256'];
  } else if (settings.AUTH_JWKS_URL) {
    key = createRemoteJWKSet(new URL(settings.AUTH_JWKS_URL));
    algorithms = ['RS256', 'ES256', 'PS256', 'EdDSA'];
  } else {
    throw new ConfigError(
      'Invalid configuration:\n  authentication is not configured: set AUTH_JWT_SECRET (HS256) or AUTH_JWKS_URL, or AUTH_DISABLED=true to run without it',
    );
  }

  const verified = new Map<string, { access: Access; expiresAt: number }>();
  const verify = async (token: string): Promise<Access> => {
    const cached = verified.get(token);
    if (cached && cached.expiresAt > Date.now()) return cached.access;
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, key as Uint8Array, {
        algorithms,
        ...(settings.AUTH_JWT_ISSUER ? { issuer: settings.AUTH_JWT_ISSUER } : {}),
        ...(settings.AUTH_JWT_AUDIENCE ? { audience: settings.AUTH_JWT_AUDIENCE } : {}),
        requiredClaims: ['sub', 'exp'],
      }));
    } catch (error) {
      throw new UnauthenticatedError(`the token is not valid: ${(error as Error).message}`);
    }
    const { sub, role, exp } = payload;
    if (typeof sub !== 'string' || sub.length === 0 || sub.length > 100) throw new UnauthenticatedError('the token has no usable sub');
    if (!ROLES.includes(role as Role)) throw new UnauthenticatedError(`the token's role must be one of ${ROLES.join(', ')}`);
    const access: Access = { open: false, sub, role: role as Role };
    if (verified.size >= TOKEN_CACHE_SIZE) verified.delete(verified.keys().next().value as string);
    verified.set(token, { access, expiresAt: (exp as number) * 1_000 });
    return access;
  };

  return {
    mode: 'jwt',
    authenticate(authorization) {
      const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
      if (!match?.[1]) return Promise.reject(new UnauthenticatedError('a bearer token is required (Authorization: Bearer <token>)'));
      return verify(match[1]);
    },
  };
}

/** What a role may be granted, each named for what it lets a request do. */
export const PERMISSIONS = [
  /** Read products and their stock ledger. */
  'readCatalog',
  /** Create and update products, restock, adjust stock. */
  'manageCatalog',
  /** `createOrder`. */
  'placeOrders',
  /** `order(id)`, an order named by its id. */
  'readOrder',
  /** `orders`, `recentOrders`, the counts; with `any`, the ledger's order ids too. */
  'listOrders',
  /** The order subscriptions. */
  'followOrders',
  /** `cancelOrder`. */
  'cancelOrders',
  /** `fulfillOrder`. */
  'fulfilOrders',
  /** `recordPayment`. */
  'recordPayments',
  /** Dead letters, reconciliation, the subgraph SDL, the dashboard's rehearsal and detailed status. */
  'operate',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** Over whose orders a grant reaches: every customer's, or only the customer its token's `sub` names. */
export type Reach = 'any' | 'own';

/**
 * The role model: each role's permissions and their reach. Resolvers ask for a permission, never
 * for a role, and a role has exactly what is listed here: a new role starts with nothing, neither
 * a customer's reach nor an admin's, until it is granted each thing here (and in the README's
 * "Who may do what").
 */
const GRANTS: Record<Role, Partial<Record<Permission, Reach>>> = {
  admin: Object.fromEntries(PERMISSIONS.map((p) => [p, 'any'])),
  customer: { readCatalog: 'any', placeOrders: 'own', readOrder: 'own', listOrders: 'own', followOrders: 'own', cancelOrders: 'own' },
  // A payment provider's callback: it pays orders and reads the ones it pays, nothing else.
  payments: { recordPayments: 'any', readOrder: 'any' },
};

/** How far a request reaches with a permission; undefined when its role has none. Open access reaches everything. */
export const reachOf = (access: Access, permission: Permission): Reach | undefined =>
  access.open ? 'any' : GRANTS[access.role][permission];

/** Whether a request has a permission over every customer. */
export const may = (access: Access, permission: Permission): boolean => reachOf(access, permission) === 'any';

const forbidden = (access: Access, action: string) =>
  new ForbiddenError(access.open ? `may not ${action}` : `the ${access.role} role may not ${action}`);

/** Throws FORBIDDEN unless the request has the permission over every customer. */
export function requirePermission(access: Access, permission: Permission, action: string): void {
  if (!may(access, permission)) throw forbidden(access, action);
}

/**
 * The only customer a request may act for with a permission: undefined when it may act for any,
 * its token's `sub` when its role reaches its own orders only. Throws FORBIDDEN when its role has
 * no such permission.
 */
export function customerScope(access: Access, permission: Permission, action: string): string | undefined {
  const reach = reachOf(access, permission);
  if (reach === undefined) throw forbidden(access, action);
  return reach === 'own' && !access.open ? access.sub : undefined;
}
