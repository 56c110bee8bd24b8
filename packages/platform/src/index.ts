export * from './errors.ts';
export * from './logger.ts';
export * from './config.ts';
export * from './http.ts';
export * from './db/index.ts';
export * from './messaging/index.ts';
export * from './graphql.ts';
export * from './runtime.ts';
