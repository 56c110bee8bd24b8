export * from './database.ts';
export * from './postgres.ts';
export * from './pglite.ts';
export * from './migrate.ts';
export * from './guarded.ts';
