export { composeSupergraph, DEFAULT_SUBGRAPH_URLS, type Subgraph } from './compose.ts';
