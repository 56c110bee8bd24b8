/**
 * `npm run dlq`: inspect and replay what consumers parked in the dead-letter queues.
 *   npm run dlq -- list order.created.inventory [--first 50]
 *   npm run dlq -- replay order.created.inventory --id <message id> [--id ...] | --all
 */
import { QUEUE_TYPES, queues, type QueueType } from '@stockflow/contracts';
import { createAmqpTransport, type ParkedPayment } from '@stockflow/messaging';
import { createLogger, safeUrl } from '@stockflow/observability';
import { fail, parseCommand } from './cli.ts';

const consumerQueues = Object.values(queues);
const usage = `Usage:
  npm run dlq -- list <queue> [--first N]
  npm run dlq -- replay <queue> --id ID [--id ID ...] | --all
Options:
  --amqp-url URL   broker (default $AMQP_URL or amqp://guest:guest@127.0.0.1:5672); a comma-separated list for a cluster
  $AMQP_QUEUE_TYPE quorum (default) or classic, as the services declare the queues
Queues: ${consumerQueues.map((q) => q.queue).join(', ')}`;

const { values, positionals } = parseCommand(usage, {
  first: { type: 'string' },
  id: { type: 'string', multiple: true },
  all: { type: 'boolean' },
  'amqp-url': { type: 'string' },
});
const [command, queueName] = positionals;
if (command !== 'list' && command !== 'replay') fail(`the first argument must be list or replay\n\n${usage}`);
const queue = consumerQueues.find((q) => q.queue === queueName);
if (!queue) fail(`unknown queue "${queueName ?? ''}"\n\n${usage}`);
const first = values.first === undefined ? 50 : Number(values.first);
if (!Number.isInteger(first) || first < 1 || first > 10_000) fail('--first must be a whole number from 1 to 10000');
if (command === 'replay' && !values.all && !values.id?.length) fail(`replay needs --id (one or more) or --all\n\n${usage}`);

/** What a parked payment event stands for, in a sentence an operator acts on (README, "When things fail"). */
function moneyOf(p: ParkedPayment): string {
  const what = `${p.paymentId ?? '(no payment id)'} for ${p.orderId ?? '(no order id)'}`;
  const amount = `${p.amountCents ?? '?'} cents ${p.currency ?? '(no currency)'}`;
  if (p.moneyTaken === false) return `${what}: a failed attempt, no money taken`;
  if (p.moneyTaken === null) return `cannot tell whether money was taken (${what}, ${amount}): ask the payment service`;
  return `${what}: ${amount} TAKEN, not recorded and no refund asked: fix the cause and replay it, or give it back through the provider`;
}

const url = values['amqp-url'] ?? process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const queueType = (process.env.AMQP_QUEUE_TYPE ?? 'quorum') as QueueType;
if (!QUEUE_TYPES.includes(queueType)) fail(`AMQP_QUEUE_TYPE must be one of ${QUEUE_TYPES.join(', ')}`);
let transport;
try {
  transport = await createAmqpTransport({
    url,
    queues: consumerQueues,
    queueType,
    connectionName: 'dlq-cli',
    logger: createLogger({ name: 'dlq', level: 'warn' }),
  });
} catch (error) {
  fail(`cannot reach RabbitMQ at ${safeUrl(url)}: ${(error as Error).message}`);
}
try {
  if (command === 'list') {
    const parked = await transport.deadLetters.list(queue, first);
    console.log(`${parked.length} parked in ${queue.deadLetterQueue}${parked.length === first ? ' (there may be more; use --first)' : ''}`);
    for (const d of parked) {
      console.log(`\n${d.id}\n  reason: ${d.reason}\n  routing key: ${d.routingKey}\n  body: ${d.body.slice(0, 500)}`);
      if (d.payment) console.log(`  payment: ${moneyOf(d.payment)}`);
    }
  } else {
    const count = await transport.deadLetters.replay(queue, values.all ? 'all' : (values.id ?? []));
    console.log(`replayed ${count} message${count === 1 ? '' : 's'} to ${queue.queue}`);
  }
} finally {
  await transport.close();
}
