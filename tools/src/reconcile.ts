/**
 * `npm run reconcile`: sends again the OrderCreated of orders still PENDING past a threshold
 * (their event or its answer was lost or parked), a batch at a time at a set pace, until none is
 * left. Safe at any time, with any number of instances: inventory answers a repeat with its first
 * decision, an order just sent again is left alone for the same threshold, and the Order Service
 * raises the threshold to the current processing lag (orders younger than that are only waiting
 * their turn in a slow queue; sending them again would lengthen it).
 *   npm run reconcile -- --older-than 5m [--batch 200] [--rate 100]
 * Exits 0 when done (printing how many), 2 on bad flags or an unreachable Order Service.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { graphqlClient } from '@stockflow/client';
import { fail, parseCli, wholeNumber } from './cli.ts';

const usage = `Usage: npm run reconcile -- [--older-than 5m] [--batch 200] [--rate 100] [--orders-url URL] [--token TOKEN]
  --older-than D   orders PENDING for longer than this: 90s, 5m, 2h, 1d (default 5m); the Order
                   Service raises it to the current processing lag when that is longer
  --batch N        orders sent again per call, 1 to 1000 (default 200)
  --rate N         orders sent again per second at most, 1 to 10000 (default 100): the Inventory
                   Service takes them on top of its live traffic
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
  {
    'older-than': { type: 'string' },
    batch: { type: 'string' },
    rate: { type: 'string' },
    'orders-url': { type: 'string' },
    token: { type: 'string' },
  },
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
    batch: wholeNumber(1_000).default(200),
    rate: wholeNumber(10_000).default(100),
    'orders-url': z.string().url('must be a URL like http://localhost:8001/graphql').default('http://localhost:8001/graphql'),
    token: z.string().min(1).optional(),
  }),
);

interface Page {
  republished: number;
  orderIds: string[];
  remaining: number;
  olderThanSeconds: number;
  processingLagSeconds: number;
}

const client = graphqlClient(args['orders-url'], { token: args.token ?? process.env.STOCKFLOW_TOKEN });
const reconcile = async (): Promise<Page> => {
  let result;
  try {
    result = await client.request<{ reconcilePendingOrders: Page }>(
      `mutation($s: Int, $limit: Int) {
        reconcilePendingOrders(olderThanSeconds: $s, limit: $limit) { republished orderIds remaining olderThanSeconds processingLagSeconds }
      }`,
      { s: args['older-than'], limit: args.batch },
    );
  } catch (error) {
    fail(`cannot reach the Order Service at ${args['orders-url']}: ${(error as Error).message}`);
  }
  if (result.errors?.length || !result.data) {
    fail(`the Order Service refused: ${result.errors?.map((e) => e.message).join('; ') ?? 'no data'}`);
  }
  return result.data.reconcilePendingOrders;
};

let sent = 0;
let threshold = args['older-than'];
for (;;) {
  const started = Date.now();
  const page = await reconcile();
  sent += page.republished;
  for (const id of page.orderIds) console.log(`  ${id}`);
  if (page.olderThanSeconds > threshold) {
    threshold = page.olderThanSeconds;
    console.log(
      `threshold raised to ${threshold} s: the Inventory Service answers orders ${page.processingLagSeconds.toFixed(1)} s after they are placed, so a younger PENDING order is only waiting its turn`,
    );
  }
  // Nothing sent: none is due, or a concurrent run holds the rest and sends them itself.
  if (page.remaining === 0 || page.republished === 0) {
    if (page.remaining > 0) console.log(`${page.remaining} more due, held by another run of the repair`);
    break;
  }
  await sleep(Math.max(0, (page.republished / args.rate) * 1_000 - (Date.now() - started)));
}
console.log(`sent OrderCreated again for ${sent} order${sent === 1 ? '' : 's'} PENDING for over ${threshold} s`);
