import path from 'node:path';
import { buildASTSchema, buildSchema, parse, type GraphQLSchema } from 'graphql';
import { subgraphSdl } from '@stockflow/graphql';
import { composeSupergraph, DEFAULT_SUBGRAPH_URLS } from '@stockflow/supergraph';
import { inventorySchema } from '@stockflow/inventory';
import { ordersSchema } from '@stockflow/orders';

const root = path.resolve(import.meta.dirname, '..', '..');

/** Each service's schema and where its committed SDL lives. */
export const sdlFiles: { file: string; schema: GraphQLSchema }[] = [
  { file: path.join(root, 'services', 'inventory', 'schema.graphql'), schema: inventorySchema },
  { file: path.join(root, 'services', 'orders', 'schema.graphql'), schema: ordersSchema },
];

/** The subgraph SDL, federation directives included: what `_service { sdl }` answers and the supergraph is composed from. */
export const renderSdl = (schema: GraphQLSchema) => `${subgraphSdl(schema)}\n`;
/** The supergraph the gateway serves, composed from both subgraphs' SDL. */
export const supergraphFile = path.join(root, 'apps', 'gateway', 'supergraph.graphql');

const composed = () =>
  composeSupergraph([
    { name: 'inventory', sdl: renderSdl(inventorySchema), url: DEFAULT_SUBGRAPH_URLS.inventory },
    { name: 'orders', sdl: renderSdl(ordersSchema), url: DEFAULT_SUBGRAPH_URLS.orders },
  ]);
export const renderSupergraph = () => `${composed().supergraphSdl}\n`;
/** The one graph as the gateway's clients see it. */
export const gatewaySchema = () => buildSchema(composed().publicSdl);
/** The supergraph as the gateway counts an operation's cost on it (its lists keep their @listSize). */
export const supergraphSchema = () => buildASTSchema(parse(composed().supergraphSdl), { assumeValidSDL: true });

export const relativeToRoot = (file: string) => path.relative(root, file);
