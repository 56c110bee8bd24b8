import { z } from 'zod';
import { MAX_STOCK_LOCATIONS } from '@stockflow/contracts';
import { parseCli, wholeNumber } from '../cli.ts';

/**
 * distributed-N: N inventory instances on the single local RabbitMQ node with classic queues (as
 * measured before quorum queues became the default); quorum-1: the same node with quorum queues;
 * cluster-1: quorum queues replicated over the 3-node cluster (tools/rabbitmq-cluster.sh), the
 * production topology. The three share this machine's two cores with everything else.
 */
const CONFIGURATIONS = ['embedded', 'distributed-1', 'distributed-2', 'quorum-1', 'cluster-1'] as const;
const SCENARIOS = ['even', 'gateway', 'floor', 'hot', 'steady', 'joined', 'drain', 'drain-reservable', 'drain-spread', 'expiry'] as const;
/** Scenarios that need a broker and PostgreSQL, or the gateway and forwarder processes: the embedded platform has none of them. */
const DISTRIBUTED_ONLY: readonly (typeof SCENARIOS)[number][] = [
  'gateway',
  'floor',
  'joined',
  'drain',
  'drain-reservable',
  'drain-spread',
  'expiry',
];

const usage = `Usage: npm run bench -- [--orders N] [--backlog N] [--warmup N] [--repeat N] [--locations N] [--only LIST] [--scenarios LIST]
  --orders N        orders per load scenario, and holds falling due at once in expiry (default 5000;
                    the targets are stated for 20000)
  --backlog N       OrderCreated queued for each backlog-drain scenario (default 20000)
  --warmup N        orders sent to each configuration before it is measured (default 2000; 0 for none)
  --repeat N        rounds of the scenarios per configuration; the table shows each figure's median
                    and, with more than one round, its range (default 1)
  --locations N     stock locations the load scenarios' catalogs (and the warm-up's) are stocked at,
                    1 to ${MAX_STOCK_LOCATIONS} (default 1: MAIN alone): each product that is not hot at one of
                    them in turn, so orders of products that live apart are split; each hot product
                    spread over all of them
  --only LIST       configurations to run, comma-separated: ${CONFIGURATIONS.join(', ')}
  --scenarios LIST  scenarios to run, comma-separated: ${SCENARIOS.join(', ')} (default all)
                    gateway: the even catalog's load (orders created, their statuses polled)
                      sent to the gateway's /graphql instead of the Order Service
                    floor: the same load through a bare forwarder (token checked, nothing else),
                      what a minimal Node forwarder costs here, to read the gateway's share against
                    joined: --orders requests through the gateway for existing orders with their
                      lines' products (from both services), 200 in flight; CPU per request
                    ${DISTRIBUTED_ONLY.join(', ')}:
                      distributed configurations only (skipped on embedded, which runs no gateway
                      process, broker or PostgreSQL)`;

/** A comma-separated flag naming some of `choices` (all of them when absent). */
const listOf = <T extends string>(choices: readonly [T, ...T[]]) =>
  z
    .string()
    .default(choices.join(','))
    .transform((s) => s.split(',').map((x) => x.trim()))
    .pipe(z.array(z.enum(choices)).min(1));

/** The bench's flags, checked: on a bad one it prints why and exits 2. */
export const parseBenchArgs = (argv: string[] = process.argv.slice(2)) =>
  parseCli(
    usage,
    {
      orders: { type: 'string' },
      backlog: { type: 'string' },
      warmup: { type: 'string' },
      repeat: { type: 'string' },
      locations: { type: 'string' },
      only: { type: 'string' },
      scenarios: { type: 'string' },
    },
    z
      .object({
        orders: wholeNumber(1_000_000).default(5_000),
        backlog: wholeNumber(1_000_000).default(20_000),
        warmup: wholeNumber(1_000_000, { zero: true }).default(2_000),
        repeat: wholeNumber(20).default(1),
        locations: wholeNumber(MAX_STOCK_LOCATIONS).default(1),
        only: listOf(CONFIGURATIONS),
        scenarios: listOf(SCENARIOS),
      })
      .refine((a) => !a.scenarios.includes('drain-spread') || a.backlog >= 1_000, {
        path: ['backlog'],
        message: 'drain-spread spreads the backlog over 1,000 products, one unit each at least: it needs 1000 or more',
      })
      .superRefine((a, ctx) => {
        // Skipped silently on embedded when some distributed configuration runs them; asked for on
        // embedded alone they would leave the table without the rows the command line asked for.
        const unrunnable = a.scenarios.filter((s) => DISTRIBUTED_ONLY.includes(s));
        if (a.only.every((c) => c === 'embedded') && unrunnable.length > 0) {
          ctx.addIssue({
            code: 'custom',
            path: ['scenarios'],
            message: `${unrunnable.join(', ')} run on distributed configurations only, and --only names none`,
          });
        }
      }),
    argv,
  );

export type BenchArgs = ReturnType<typeof parseBenchArgs>;
export type Configuration = (typeof CONFIGURATIONS)[number];
export type ScenarioKey = (typeof SCENARIOS)[number];
