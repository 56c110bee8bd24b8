/** `npm run asyncapi`: writes the AsyncAPI document of the events and the topology to docs/asyncapi.yaml. */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { asyncApiFile, renderAsyncApi } from './asyncapi.ts';

await writeFile(asyncApiFile, renderAsyncApi());
console.log(`wrote ${path.relative(process.cwd(), asyncApiFile)}`);
