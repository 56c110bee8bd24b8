import { readFile } from 'node:fs/promises';
import { execute, parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { relativeToRoot, renderSdl, renderSupergraph, sdlFiles, supergraphFile } from './schemas.ts';

describe('committed SDL', () => {
  it.each(sdlFiles.map((f) => [relativeToRoot(f.file), f] as const))(
    '%s matches the schema the service serves and its `_service { sdl }` (run `npm run schema:print` after changing it)',
    async (_name, { file, schema }) => {
      const committed = await readFile(file, 'utf8');
      expect(committed).toBe(renderSdl(schema));
      const served = (await execute({ schema, document: parse('{ _service { sdl } }'), contextValue: { introspection: true } })) as {
        data?: { _service: { sdl: string } };
      };
      expect(`${served.data?._service.sdl}\n`).toBe(committed);
    },
  );

  it('apps/gateway/supergraph.graphql is the composition of both subgraphs (run `npm run supergraph` after changing them)', async () => {
    expect(await readFile(supergraphFile, 'utf8')).toBe(renderSupergraph());
  });
});
