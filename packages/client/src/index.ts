export * from './graphql-client.ts';
export * from './token.ts';
