export * from './logger.ts';
export * from './metrics.ts';
export * from './metrics-text.ts';
export * from './safe-url.ts';
export * from './tracing/index.ts';
