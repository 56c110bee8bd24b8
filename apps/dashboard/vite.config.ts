import path from 'node:path';
import { defineConfig } from 'vite';

/** The dashboard page: React without a Vite plugin (esbuild compiles the JSX), built to apps/dashboard/dist. */
export default defineConfig({
  root: import.meta.dirname,
  base: './',
  esbuild: { jsx: 'automatic' },
  build: { outDir: path.join(import.meta.dirname, 'dist'), emptyOutDir: true, sourcemap: true },
  logLevel: 'warn',
});
