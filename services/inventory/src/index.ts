/** What the rest of Stockflow (the one-process app, the gateway's tests, the tools) may use of the Inventory Service. */
export { startInventoryService, inventoryMigrations } from './service.ts';
export { loadInventoryConfig, type InventoryConfig } from './config.ts';
export { inventorySchema } from './graphql/schema.ts';
export { seedCatalog, type CatalogRepository } from './db/catalog.ts';
export { SAMPLE_CATALOG } from './domain/sample-catalog.ts';
export { CANCELLED_BEFORE_RESERVATION } from './db/releases.ts';
