/** What the one-process app and the deployment checks use of the gateway. */
export { startGateway, loadGatewayConfig, type GatewayConfig, type RunningGateway } from './gateway.ts';
export { createGatewayMetrics } from './observability.ts';
