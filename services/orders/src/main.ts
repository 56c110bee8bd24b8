import { runMain } from '@stockflow/platform';
import { loadOrdersConfig } from './config.ts';
import { startOrdersService } from './service.ts';

runMain('orders', loadOrdersConfig, startOrdersService);
