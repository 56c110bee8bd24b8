import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { relativeToRoot, renderSdl, sdlFiles } from './schemas.ts';

describe('committed SDL', () => {
  it.each(sdlFiles.map((f) => [relativeToRoot(f.file), f] as const))(
    '%s matches the schema the service serves (run `npm run schema:print` after changing it)',
    async (_name, { file, schema }) => {
      expect(await readFile(file, 'utf8')).toBe(renderSdl(schema));
    },
  );
});
