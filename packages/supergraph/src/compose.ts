import { composeServices } from '@theguild/federation-composition';
import { parse } from 'graphql';

/** A subgraph as the supergraph names it: its SDL (`_service { sdl }`) and where the gateway finds it by default. */
export interface Subgraph {
  name: 'orders' | 'inventory';
  sdl: string;
  url: string;
}

/** The default subgraph URLs written into the supergraph; the gateway's ORDERS_URL and INVENTORY_URL replace them. */
export const DEFAULT_SUBGRAPH_URLS = {
  orders: 'http://localhost:8001/graphql',
  inventory: 'http://localhost:8000/graphql',
} as const;

/**
 * The supergraph SDL of the subgraphs (what the gateway loads) and the graph its clients see (the
 * same without what is @inaccessible or federation's own), or every composition error at once.
 */
export function composeSupergraph(subgraphs: readonly Subgraph[]): { supergraphSdl: string; publicSdl: string } {
  const result = composeServices(subgraphs.map((s) => ({ name: s.name, url: s.url, typeDefs: parse(s.sdl) })));
  if (result.errors) throw new Error(`The subgraphs do not compose:\n${result.errors.map((e) => `  ${e.message}`).join('\n')}`);
  return { supergraphSdl: result.supergraphSdl, publicSdl: result.publicSdl };
}
