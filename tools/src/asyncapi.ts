import path from 'node:path';
import { stringify } from 'yaml';
import { asyncApiDocument } from '@stockflow/contracts';

const root = path.resolve(import.meta.dirname, '..', '..');

/** The committed AsyncAPI document, for other teams to read and generate clients from. */
export const asyncApiFile = path.join(root, 'docs', 'asyncapi.yaml');

/**
 * The document as committed: YAML with no anchors (a reader or a generator sees every binding where it applies), its
 * strings quoted wherever a YAML 1.1 reader would take them for something else (a timestamp, say).
 */
export const renderAsyncApi = () =>
  '# Generated from packages/contracts (src/asyncapi.ts) by `npm run asyncapi`: do not edit.\n' +
  stringify(asyncApiDocument(), { aliasDuplicateObjects: false, lineWidth: 0, version: '1.1' });
