/**
 * `npm run schema:print` (or `npm run supergraph`): writes each service's subgraph SDL next to it
 * and the supergraph composed from them for the gateway, so API changes show up in review.
 */
import { writeFile } from 'node:fs/promises';
import { relativeToRoot, renderSdl, renderSupergraph, sdlFiles, supergraphFile } from './schemas.ts';

for (const { file, schema } of sdlFiles) {
  await writeFile(file, renderSdl(schema));
  console.log(`wrote ${relativeToRoot(file)}`);
}
await writeFile(supergraphFile, renderSupergraph());
console.log(`wrote ${relativeToRoot(supergraphFile)}`);
