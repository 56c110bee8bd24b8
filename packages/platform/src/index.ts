export * from './errors.ts';
export * from './config.ts';
export * from './auth.ts';
export * from './http.ts';
export * from './host.ts';
export * from './breaker.ts';
export * from './rate-limit.ts';
export * from './batcher.ts';
