export * from './services.ts';
export * from './amqp.ts';
export * from './process.ts';
export * from './graphql.ts';
export * from './proxy.ts';
export * from './cluster.ts';
export * from './broker-cluster.ts';
export * from './otlp.ts';
