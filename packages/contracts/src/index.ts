export * from './events.ts';
export * from './envelope.ts';
export * from './topology.ts';
export * from './asyncapi.ts';
export { EVENT_SCHEMAS } from './asyncapi-events.ts';
