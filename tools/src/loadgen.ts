/**
 * `npm run loadgen`: rehearse a peak against a running platform (embedded or distributed).
 *   npm run loadgen -- --orders 20000 --rate 500 --products 1000 --hot 5 --hot-share 0.5
 * Exits 1 when orders are stuck or the audit fails, 2 on bad flags or an unreachable platform.
 */
import { writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { fraction, parseCli, requireApi, wholeNumber } from './cli.ts';
import { runLoad, type PaymentsReport } from '@stockflow/loadgen';
import { renderHtmlReport } from './report-html.ts';

const usage = `Usage: npm run loadgen -- [options]
  --orders N           orders to send (default 1000)
  --rate N             orders per second (a fixed arrival rate); without it, --concurrency
  --concurrency N      requests in flight (default 50; with --rate, the most in flight)
  --products N         catalog size, created if missing as <catalog>-00000... (default 100)
  --catalog NAME       the catalog's SKU prefix, letters and digits (default LG); a catalog is
                       reused as it stands, so name a new one for fresh stock
  --hot N              how many of them are hot (scarce) products (default 5)
  --hot-share F        share of orders asking for a hot product, 0..1 (default 0.5)
  --stock N            stock of an ordinary product when created (default 1000000)
  --hot-stock N        stock of a hot product when created (default 100)
  --orders-url URL     default http://localhost:8001/graphql
  --inventory-url URL  default http://localhost:8000/graphql
  --settle-timeout S   seconds to wait for the last orders (default 60)
  --out PATH           writes PATH.json and PATH.html (default loadgen-result)
  --token TOKEN        admin bearer token, when the platform requires one (default $STOCKFLOW_TOKEN;
                       make one with: npm run token -- --role admin --sub loadgen)
  --pay-share F        share of the confirmed orders to pay, 0..1 (default 0): each through the
                       recordPayment mutation for its total (needs an admin token when auth is on)
  --pay-after-ms N     how long after seeing an order confirmed it is paid (default 1000); past
                       PAYMENT_HOLD_SECONDS the payment is refunded and the order expires
  --no-audit           skip the stock audit`;

const url = z.string().url('must be a URL like http://localhost:8001/graphql');

const args = parseCli(
  usage,
  {
    orders: { type: 'string' },
    rate: { type: 'string' },
    concurrency: { type: 'string' },
    products: { type: 'string' },
    catalog: { type: 'string' },
    hot: { type: 'string' },
    'hot-share': { type: 'string' },
    stock: { type: 'string' },
    'hot-stock': { type: 'string' },
    'orders-url': { type: 'string' },
    'inventory-url': { type: 'string' },
    'settle-timeout': { type: 'string' },
    out: { type: 'string' },
    'no-audit': { type: 'boolean' },
    token: { type: 'string' },
    'pay-share': { type: 'string' },
    'pay-after-ms': { type: 'string' },
  },
  z
    .object({
      orders: wholeNumber(1_000_000).default(1_000),
      rate: wholeNumber(100_000).optional(),
      concurrency: wholeNumber(5_000).default(50),
      products: wholeNumber(100_000).default(100),
      catalog: z
        .string()
        .regex(/^[A-Za-z0-9]{1,20}$/, 'must be 1 to 20 letters or digits')
        .default('LG'),
      hot: z.coerce.number({ error: 'must be a number' }).int().min(0).default(5),
      'hot-share': fraction.default(0.5),
      stock: wholeNumber(2_000_000_000).default(1_000_000),
      'hot-stock': z.coerce.number({ error: 'must be a number' }).int().min(0).default(100),
      'orders-url': url.default('http://localhost:8001/graphql'),
      'inventory-url': url.default('http://localhost:8000/graphql'),
      'settle-timeout': wholeNumber(3_600).default(60),
      out: z.string().min(1).default('loadgen-result'),
      'no-audit': z.boolean().default(false),
      token: z.string().min(1, 'must not be empty').optional(),
      'pay-share': fraction.default(0),
      'pay-after-ms': wholeNumber(3_600_000, { zero: true }).default(1_000),
    })
    .refine((a) => a.hot <= a.products, { message: 'cannot exceed --products', path: ['hot'] }),
);

const token = args.token ?? (process.env.STOCKFLOW_TOKEN || undefined);
await requireApi('Order Service', args['orders-url'], token, 'npm run token -- --role admin --sub loadgen');
await requireApi('Inventory Service', args['inventory-url'], token, 'npm run token -- --role admin --sub loadgen');

const tty = process.stderr.isTTY;
const report = await runLoad(
  {
    ordersUrl: args['orders-url'],
    inventoryUrl: args['inventory-url'],
    orders: args.orders,
    rate: args.rate,
    concurrency: args.concurrency,
    products: args.products,
    catalog: args.catalog,
    hot: args.hot,
    hotShare: args['hot-share'],
    stock: args.stock,
    hotStock: args['hot-stock'],
    settleTimeoutMs: args['settle-timeout'] * 1_000,
    audit: !args['no-audit'],
    token,
    payShare: args['pay-share'],
    payAfterMs: args['pay-after-ms'],
  },
  (p) => {
    const line = `${(p.elapsedMs / 1_000).toFixed(0).padStart(4)} s  sent ${p.sent}  accepted ${p.accepted}  failed ${p.failed}  confirmed ${p.confirmed}  paid ${p.paid}  cancelled ${p.cancelled}  pending ${p.pending}  rate ${(p.accepted / Math.max(p.elapsedMs / 1_000, 0.001)).toFixed(0)}/s`;
    process.stderr.write(tty ? `\r${line}\u001b[K` : `${line}\n`);
  },
);
if (tty) process.stderr.write('\n');

const listed = (counts: Record<string, number>) =>
  Object.entries(counts)
    .map(([k, n]) => `${n} ${k}`)
    .join(', ');
const paymentsLine = (p: PaymentsReport) =>
  `${p.share > 0 ? `paid ${p.paid} of ${p.confirmed} confirmed (share ${p.share}, after ${p.afterMs} ms)` : 'none sent'}` +
  `${Object.keys(p.refused).length ? `; refused: ${listed(p.refused)}` : ''}${Object.keys(p.errors).length ? `; failed: ${listed(p.errors)}` : ''}` +
  `; expired ${p.expired}`;
const ms = (v: number) => (Number.isFinite(v) ? `${Math.round(v)} ms` : 'n/a');
console.log(`
run ${report.runId}: ${report.accepted} accepted of ${report.sent} (${report.failed} failed${Object.keys(report.errors).length ? `: ${JSON.stringify(report.errors)}` : ''})
  accepted/s   ${report.acceptedPerSecond.toFixed(0)}   (over ${report.acceptSeconds.toFixed(1)} s)
  completed/s  ${report.completedPerSecond.toFixed(0)}   (over ${report.completeSeconds.toFixed(1)} s)
  latency      p50 ${ms(report.latencyMs.p50)}  p95 ${ms(report.latencyMs.p95)}  p99 ${ms(report.latencyMs.p99)}  max ${ms(report.latencyMs.max)}
  outcomes     confirmed ${report.outcomes.CONFIRMED}  paid ${report.outcomes.PAID}  cancelled ${report.outcomes.CANCELLED}  stuck ${report.stuck.length}
  payments     ${paymentsLine(report.payments)}
  audit        ${report.audit ? (report.audit.ok ? 'passed' : `FAILED: ${report.audit.problems.join('; ')}`) : 'skipped'}`);
await writeFile(`${args.out}.json`, JSON.stringify(report, null, 2));
await writeFile(`${args.out}.html`, renderHtmlReport(report));
console.log(`  wrote ${args.out}.json and ${args.out}.html`);
process.exit(report.ok ? 0 : 1);
