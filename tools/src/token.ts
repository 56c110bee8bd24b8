/**
 * `npm run token`: issues an HS256 token for local use, signed with AUTH_JWT_SECRET (the
 * environment, a file through AUTH_JWT_SECRET_FILE, or --secret).
 *   npm run token -- --role admin --sub ops
 *   npm run token -- --role customer --sub alice --expires 1h
 *   npm run token -- --role payments --sub psp-webhook --expires 90d
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ROLES } from '@stockflow/platform';
import { signToken } from '@stockflow/client';
import { fail, parseCli } from './cli.ts';

const usage = `Usage: npm run token -- --role admin|customer|payments --sub NAME [--expires 12h] [--secret S]
  --role R      admin (products, stock, every order), customer (its own orders) or payments
                (a payment provider's callback: recordPayment and order(id), nothing else)
  --sub NAME    the user; for a customer, its customer id; for payments, the payment service
  --expires D   lifetime: 30m, 12h, 7d... (default 12h)
  --secret S    HS256 secret, at least 32 characters (default $AUTH_JWT_SECRET, or the file $AUTH_JWT_SECRET_FILE)`;

const args = parseCli(
  usage,
  { role: { type: 'string' }, sub: { type: 'string' }, expires: { type: 'string' }, secret: { type: 'string' } },
  z.object({
    role: z.enum(ROLES, { error: `must be one of ${ROLES.join(', ')}` }),
    sub: z.string().min(1, 'must not be empty').max(100, 'must be at most 100 characters'),
    expires: z
      .string()
      .regex(/^\d+[smhdw]$/, 'must be a number followed by s, m, h, d or w (e.g. 12h)')
      .default('12h'),
    secret: z.string().optional(),
  }),
);

const fromFile = process.env.AUTH_JWT_SECRET_FILE
  ? readFileSync(process.env.AUTH_JWT_SECRET_FILE, 'utf8').replace(/\r?\n$/, '')
  : undefined;
const secret = args.secret ?? process.env.AUTH_JWT_SECRET ?? fromFile;
if (!secret) fail(`no secret: set AUTH_JWT_SECRET (the services' secret) or pass --secret\n\n${usage}`);
if (secret.length < 32) fail('the secret must be at least 32 characters (as the services require)');
console.log(await signToken(secret, { sub: args.sub, role: args.role }, args.expires));
