/** Writes each service's SDL next to it, so API changes show up in review. */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { printSchema, type GraphQLSchema } from 'graphql';
import { inventorySchema } from '../../services/inventory/src/graphql/schema.ts';
import { ordersSchema } from '../../services/orders/src/graphql/schema.ts';

const root = path.resolve(import.meta.dirname, '..', '..');
const schemas: [string, GraphQLSchema][] = [
  ['inventory', inventorySchema],
  ['orders', ordersSchema],
];
for (const [service, schema] of schemas) {
  const target = path.join(root, 'services', service, 'schema.graphql');
  await writeFile(target, `${printSchema(schema)}\n`);
  console.log(`wrote ${path.relative(root, target)}`);
}
