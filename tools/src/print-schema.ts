/** Writes each service's SDL next to it, so API changes show up in review. */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { printSchema } from 'graphql';
import { inventorySchema } from '../../services/inventory/src/graphql/schema.ts';

const root = path.resolve(import.meta.dirname, '..', '..');
const target = path.join(root, 'services', 'inventory', 'schema.graphql');
await writeFile(target, `${printSchema(inventorySchema)}\n`);
console.log(`wrote ${path.relative(root, target)}`);
