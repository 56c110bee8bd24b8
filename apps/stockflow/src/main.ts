/** `npm start`: the whole platform in one process (embedded unless RabbitMQ and PostgreSQL are configured). */
import { stopOnSignals } from '@stockflow/runtime';
import { exposureWarning, startPlatform } from './platform.ts';

try {
  const platform = await startPlatform();
  const line = (label: string, value: string) => console.log(`  ${label.padEnd(22)} ${value}`);
  console.log(`\nStockflow is running (${platform.mode} mode)`);
  line('Dashboard', `http://localhost:${platform.dashboard.port}/`);
  line('GraphQL (one graph)', `http://localhost:${platform.gateway.port}/graphql`);
  line('Order Service GraphQL', `http://localhost:${platform.orders.port}/graphql`);
  line('Inventory GraphQL', `http://localhost:${platform.inventory.port}/graphql`);
  line('Health', [platform.gateway, platform.orders, platform.inventory].map((part) => `http://localhost:${part.port}/ready`).join('  '));
  line(
    'Authentication',
    platform.orders.auth === 'jwt' ? 'JWT bearer tokens (npm run token -- --role admin --sub me)' : 'OFF: every request has full access',
  );
  if (platform.mode === 'embedded') line('Data', `${process.env.DATA_DIR ?? '.data'} (delete it to start afresh)`);
  console.log('  Stop with Ctrl+C.\n');
  const warning = exposureWarning(platform);
  if (warning) console.warn(`  WARNING: ${warning}\n`);
  stopOnSignals(platform.logger, platform.shutdownTimeoutMs, async () => {
    await platform.close();
    // What a person at the terminal reads; a stop that failed or ran out of time says so in the log instead.
    console.log('Stockflow stopped.');
  });
} catch (error) {
  process.stderr.write(`stockflow failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
