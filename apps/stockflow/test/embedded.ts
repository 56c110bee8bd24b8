/** What the tests of the embedded platform (`npm start`) share: a data directory of their own. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** `npm start`'s settings in a test, either mode: ports the system picks, logs off, no sample catalog. */
export const PLATFORM_TEST_ENV = {
  INVENTORY_PORT: '0',
  ORDERS_PORT: '0',
  DASHBOARD_PORT: '0',
  // The gateway's default (4000) would collide between platforms started at once.
  GATEWAY_PORT: '0',
  LOG_LEVEL: 'silent',
  SEED_SAMPLE_CATALOG: 'false',
};

/**
 * `npm start`'s settings on a fresh DATA_DIR named after `name`: ports the system picks, logs off,
 * no sample catalog (PLATFORM_TEST_ENV). `remove` deletes the directory; call it once the platform is closed.
 */
export async function embeddedEnv(name: string) {
  const dir = await mkdtemp(path.join(tmpdir(), `stockflow-${name}-`));
  return {
    env: { ...PLATFORM_TEST_ENV, DATA_DIR: dir },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
