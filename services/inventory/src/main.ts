import { AppError, createLogger } from '@stockflow/platform';
import { loadInventoryConfig } from './config.ts';
import { startInventoryService } from './service.ts';

async function main() {
  const config = loadInventoryConfig();
  const logger = createLogger({ name: 'inventory', level: config.LOG_LEVEL });
  const service = await startInventoryService(config, logger);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    service.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((error: unknown) => {
  const message = error instanceof AppError ? error.message : error instanceof Error ? `${error.message}` : String(error);
  process.stderr.write(`inventory service failed to start: ${message}\n`);
  process.exit(1);
});
