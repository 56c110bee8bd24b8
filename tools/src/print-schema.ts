/** `npm run schema:print`: writes each service's SDL next to it, so API changes show up in review. */
import { writeFile } from 'node:fs/promises';
import { relativeToRoot, renderSdl, sdlFiles } from './schemas.ts';

for (const { file, schema } of sdlFiles) {
  await writeFile(file, renderSdl(schema));
  console.log(`wrote ${relativeToRoot(file)}`);
}
