export * from './transport.ts';
export * from './amqp.ts';
export * from './amqp-topology.ts';
export * from './consumer.ts';
export * from './outbox.ts';
export * from './in-process.ts';
export * from './dead-letters.ts';
