import path from 'node:path';
import { printSchema, type GraphQLSchema } from 'graphql';
import { inventorySchema } from '../../services/inventory/src/graphql/schema.ts';
import { ordersSchema } from '../../services/orders/src/graphql/schema.ts';

const root = path.resolve(import.meta.dirname, '..', '..');

/** Each service's schema and where its committed SDL lives. */
export const sdlFiles: { file: string; schema: GraphQLSchema }[] = [
  { file: path.join(root, 'services', 'inventory', 'schema.graphql'), schema: inventorySchema },
  { file: path.join(root, 'services', 'orders', 'schema.graphql'), schema: ordersSchema },
];

export const renderSdl = (schema: GraphQLSchema) => `${printSchema(schema)}\n`;
export const relativeToRoot = (file: string) => path.relative(root, file);
