/**
 * `npm run reconcile`: sends again the OrderCreated of orders still PENDING past a threshold
 * (their event or its answer was lost or parked). Safe at any time, with any number of instances:
 * inventory answers a repeat with its first decision, and an order just sent again is left alone
 * for the same threshold.
 *   npm run reconcile -- --older-than 5m
 * Exits 0 when done (printing how many), 2 on bad flags or an unreachable Order Service.
 */
import { z } from 'zod';
import { graphqlClient } from '@stockflow/platform';
import { fail, parseCli } from './cli.ts';

const usage = `Usage: npm run reconcile -- [--older-than 5m] [--orders-url URL] [--token TOKEN]
  --older-than D   orders PENDING for longer than this: 90s, 5m, 2h, 1d (default 5m)
  --orders-url URL the Order Service (default http://localhost:8001/graphql)
  --token TOKEN    admin bearer token, when the platform requires one (default $STOCKFLOW_TOKEN)`;

const UNIT_SECONDS = { s: 1, m: 60, h: 3_600, d: 86_400 } as const;

/** "90s", "5m", "2h", "1d" (or plain seconds) as seconds. */
export function durationSeconds(text: string): number | undefined {
  const match = /^(\d{1,7})([smhd]?)$/.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * UNIT_SECONDS[(match[2] || 's') as keyof typeof UNIT_SECONDS];
}

const args = parseCli(
  usage,
  { 'older-than': { type: 'string' }, 'orders-url': { type: 'string' }, token: { type: 'string' } },
  z.object({
    'older-than': z
      .string()
      .default('5m')
      .transform((text, ctx) => {
        const seconds = durationSeconds(text);
        if (seconds === undefined || seconds > 30 * 86_400) {
          ctx.addIssue({ code: 'custom', message: 'must be a duration like 90s, 5m, 2h or 1d, at most 30d' });
          return z.NEVER;
        }
        return seconds;
      }),
    'orders-url': z.string().url('must be a URL like http://localhost:8001/graphql').default('http://localhost:8001/graphql'),
    token: z.string().min(1).optional(),
  }),
);

const client = graphqlClient(args['orders-url'], { token: args.token ?? process.env.STOCKFLOW_TOKEN });
let result;
try {
  result = await client.request<{ reconcilePendingOrders: { republished: number; orderIds: string[] } }>(
    'mutation($s: Int) { reconcilePendingOrders(olderThanSeconds: $s) { republished orderIds } }',
    { s: args['older-than'] },
  );
} catch (error) {
  fail(`cannot reach the Order Service at ${args['orders-url']}: ${(error as Error).message}`);
}
if (result.errors?.length || !result.data) {
  fail(`the Order Service refused: ${result.errors?.map((e) => e.message).join('; ') ?? 'no data'}`);
}
const { republished, orderIds } = result.data.reconcilePendingOrders;
console.log(`sent OrderCreated again for ${republished} order${republished === 1 ? '' : 's'} PENDING for over ${args['older-than']} s`);
for (const id of orderIds) console.log(`  ${id}`);
