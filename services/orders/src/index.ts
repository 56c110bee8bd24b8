/** What the rest of Stockflow (the one-process app, the gateway's tests, the tools) may use of the Order Service. */
export { startOrdersService, ordersMigrations } from './service.ts';
export { loadOrdersConfig, type OrdersConfig } from './config.ts';
export { ordersSchema } from './graphql/schema.ts';
export { registerOrdersMetrics } from './metrics.ts';
