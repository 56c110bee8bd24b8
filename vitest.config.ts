import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    globalSetup: ['packages/testing/src/global-setup.ts'],
    // Every file has its own database, but all share one vhost and so the contract's fixed
    // queue names: files that consume them must not run at the same time.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
