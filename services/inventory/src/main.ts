import { runMain } from '@stockflow/runtime';
import { loadInventoryConfig } from './config.ts';
import { startInventoryService } from './service.ts';

runMain('inventory', loadInventoryConfig, startInventoryService);
