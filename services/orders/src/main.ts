import { runMain } from '@stockflow/runtime';
import { loadOrdersConfig } from './config.ts';
import { startOrdersService } from './service.ts';

runMain('orders', loadOrdersConfig, startOrdersService);
