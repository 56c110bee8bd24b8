export * from './events.ts';
export * from './envelope.ts';
export * from './topology.ts';
export * from './asyncapi.ts';
