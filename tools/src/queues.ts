/**
 * `npm run queues`: the type and depth of every queue the platform declares, and the move from
 * classic to quorum queues with the services running and nothing lost.
 *   npm run queues -- status
 *   npm run queues -- migrate --to quorum
 * Exits 0 when done, 1 when the migration stopped (it says why; run it again), 2 on bad flags or
 * an unreachable broker.
 */
import { safeUrl } from '@stockflow/observability';
import { fail, parseCommand } from './cli.ts';
import { migrateToQuorum, openBroker, queueStates } from './queue-migration.ts';

const usage = `Usage:
  npm run queues -- status
  npm run queues -- migrate --to quorum
Options:
  --amqp-url URL   broker, or a cluster's nodes comma-separated (default $AMQP_URL or amqp://guest:guest@127.0.0.1:5672)
Migrating: first set AMQP_QUEUE_TYPE=quorum on every service and roll them out (they
keep using the existing queues, and log that they differ); then migrate. See README, "Moving to
quorum queues".`;

const { values, positionals } = parseCommand(usage, { to: { type: 'string' }, 'amqp-url': { type: 'string' } });
const [command, ...rest] = positionals;
if ((command !== 'status' && command !== 'migrate') || rest.length > 0) fail(`the first argument must be status or migrate\n\n${usage}`);
// Only to quorum: see migrateToQuorum. AMQP_QUEUE_TYPE=classic serves new deployments that want classic queues.
if (command === 'migrate' && values.to !== 'quorum') fail(`migrate needs --to quorum (the only direction it moves)\n\n${usage}`);

const url = values['amqp-url'] ?? process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
let connection;
try {
  connection = await openBroker(url);
} catch (error) {
  fail(`cannot reach RabbitMQ at ${safeUrl(url)}: ${(error as Error).message}`);
}
let status = 0;
try {
  if (command === 'migrate') {
    const steps = await migrateToQuorum(connection, (line) => console.log(line));
    console.log(steps.length === 0 ? 'no classic queue left to migrate' : `migrated ${steps.length} queues`);
  }
  for (const q of await queueStates(connection))
    console.log(`${q.type.padEnd(8)} ${String(q.messages).padStart(8)} msgs  ${q.consumers} consumers  ${q.queue}`);
} catch (error) {
  console.error(`stopped: ${(error as Error).message}`);
  status = 1;
} finally {
  await connection.close();
}
process.exit(status);
