import { runMain } from '@stockflow/platform';
import { loadInventoryConfig } from './config.ts';
import { startInventoryService } from './service.ts';

runMain('inventory', loadInventoryConfig, startInventoryService);
