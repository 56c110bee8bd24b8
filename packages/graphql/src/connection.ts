import type { ObjectRef, SchemaTypes } from '@pothos/core';
import { ValidationError } from '@stockflow/platform';
import { SHAREABLE } from './federation.ts';
import { PAGE_LIMITS } from './page-limits.ts';

/** One page of a cursor connection, as repositories return it. */
export interface Page<T> {
  rows: T[];
  hasNextPage: boolean;
  totalCount: number;
}

export function pageSize(first: number | null | undefined): number {
  if (first === null || first === undefined) return PAGE_LIMITS.defaultPageSize;
  if (!Number.isInteger(first) || first < 0 || first > PAGE_LIMITS.maxPageSize) {
    throw new ValidationError(`first must be between 0 and ${PAGE_LIMITS.maxPageSize}`, { field: 'first' });
  }
  return first;
}

/** Cursors are opaque to clients; inside they are the position (a row number) after which to continue. */
export const cursor = {
  encode: (position: number): string => Buffer.from(`c:${position}`).toString('base64url'),
  decode(value: string): number {
    const match = /^c:(\d{1,19})$/.exec(Buffer.from(value, 'base64url').toString());
    if (!match?.[1]) throw new ValidationError('after is not a cursor returned by this API', { field: 'after' });
    return Number(match[1]);
  },
};

export const afterPosition = (after: string | null | undefined) => (after ? cursor.decode(after) : undefined);

const pageInfoRefs = new WeakMap<object, ObjectRef<SchemaTypes, { hasNextPage: boolean; endCursor: string | null }>>();

/** The Pothos settings every Stockflow schema uses; only the context differs per service. */
export type StockflowSchemaTypes<Context extends object> = PothosSchemaTypes.ExtendDefaultTypes<{
  Context: Context;
  Scalars: { DateTime: { Input: Date; Output: Date } };
  DefaultFieldNullability: false;
}>;

/**
 * Adds `<Name>Connection` and `<Name>Edge` to a Pothos schema: edges with cursors, nodes,
 * pageInfo and totalCount, the shape shop front ends expect.
 */
export function connectionType<Context extends object, Node>(
  builder: PothosSchemaTypes.SchemaBuilder<StockflowSchemaTypes<Context>>,
  name: string,
  node: ObjectRef<StockflowSchemaTypes<Context>, Node>,
  positionOf: (node: Node) => number,
): ObjectRef<StockflowSchemaTypes<Context>, Page<Node>> {
  let pageInfo = pageInfoRefs.get(builder) as
    ObjectRef<StockflowSchemaTypes<Context>, { hasNextPage: boolean; endCursor: string | null }> | undefined;
  if (!pageInfo) {
    pageInfo = builder.objectRef<{ hasNextPage: boolean; endCursor: string | null }>('PageInfo').implement({
      // Both subgraphs define it: the gateway may take it from either.
      ...SHAREABLE,
      fields: (t) => ({
        hasNextPage: t.boolean({ resolve: (p) => p.hasNextPage }),
        endCursor: t.string({ nullable: true, resolve: (p) => p.endCursor }),
      }),
    });
    pageInfoRefs.set(builder, pageInfo as unknown as ObjectRef<SchemaTypes, { hasNextPage: boolean; endCursor: string | null }>);
  }
  const info = pageInfo;
  const edge = builder.objectRef<{ node: Node; cursor: string }>(`${name}Edge`).implement({
    fields: (t) => ({
      cursor: t.string({ resolve: (e) => e.cursor }),
      // Node is generic here, which defeats Pothos's inference of list-or-single results.
      node: t.field({ type: node, resolve: (e) => e.node as never }),
    }),
  });
  return builder.objectRef<Page<Node>>(`${name}Connection`).implement({
    fields: (t) => ({
      totalCount: t.int({ resolve: (p) => p.totalCount }),
      edges: t.field({ type: [edge], resolve: (p) => p.rows.map((n) => ({ node: n, cursor: cursor.encode(positionOf(n)) })) }),
      nodes: t.field({ type: [node], resolve: (p) => p.rows }),
      pageInfo: t.field({
        type: info,
        resolve: (p) => {
          const last = p.rows.at(-1);
          return { hasNextPage: p.hasNextPage, endCursor: last === undefined ? null : cursor.encode(positionOf(last)) };
        },
      }),
    }),
  });
}
