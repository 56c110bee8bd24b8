export * from './events.ts';
export * from './topology.ts';
