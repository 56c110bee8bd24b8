import { createLogger } from '@stockflow/observability';
import { stopOnSignals } from '@stockflow/runtime';
import { loadGatewayConfig, startGateway } from './gateway.ts';

const boot = async () => {
  const config = loadGatewayConfig();
  const logger = createLogger({ name: 'gateway', level: config.LOG_LEVEL });
  const gateway = await startGateway(config, logger);
  stopOnSignals(logger, config.SHUTDOWN_TIMEOUT_MS, () => gateway.close());
};
boot().catch((error: unknown) => {
  process.stderr.write(`gateway failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
