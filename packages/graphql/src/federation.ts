import { printSubgraphSchema } from '@apollo/subgraph';
import { entitiesField, EntityType, serviceField } from '@apollo/subgraph/dist/types.js';
import {
  GraphQLList,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLUnionType,
  isInputObjectType,
  isInterfaceType,
  isIntrospectionType,
  isObjectType,
  isSpecifiedScalarType,
  Kind,
  parse,
  printType,
  type ConstDirectiveNode,
  type ConstValueNode,
  type GraphQLFieldConfigMap,
  type GraphQLNamedType,
  type TypeDefinitionNode,
} from 'graphql';
import { ForbiddenError, may, type Access } from '@stockflow/platform';
import { LIST_SIZE_DIRECTIVE, MAX_ITEMS_EXTENSION } from './cost.ts';

/**
 * Apollo Federation v2 for a service's schema: its types and fields carry their federation
 * directives in `extensions` (the helpers below, spread into Pothos options), and
 * `subgraphSchema` adds `_service { sdl }` and `_entities` with @apollo/subgraph's own fields.
 * (@pothos/plugin-federation does the same but cannot load without @pothos/plugin-directives.)
 */

type Directive = { name: string; args?: Record<string, unknown> };
type WithDirectives = { extensions?: { directives?: unknown } | null };

/**
 * The Federation version the subgraphs declare, and the directives they import from it (2.9 for
 * `@listSize`: a list's most, which the supergraph keeps so that the gateway counts an operation's
 * cost as its services do).
 */
const FEDERATION_LINK = { url: 'https://specs.apollo.dev/federation/v2.9', import: ['@key', '@shareable', '@inaccessible', '@listSize'] };

const directivesOf = (element: WithDirectives | undefined): Directive[] =>
  (Array.isArray(element?.extensions?.directives) ? element.extensions.directives : []) as Directive[];

/**
 * An entity other subgraphs may refer to by `key` (one field): the gateway asks this one for it
 * through `_entities` with `resolveReference`.
 */
export function entity<Context, Key extends string>(
  key: Key,
  resolveReference: (reference: Record<Key, string>, context: Context) => unknown,
) {
  return { extensions: { directives: [{ name: 'key', args: { fields: key } }], apollo: { subgraph: { resolveReference } } } } as const;
}

/**
 * An entity this subgraph is never asked for by `key` (`resolvable: false`): it hands out the
 * key, and another subgraph, asked by it, adds its own fields.
 */
export const unresolvableEntity = (key: string) =>
  ({ extensions: { directives: [{ name: 'key', args: { fields: key, resolvable: false } }] } }) as const;

/** A type or field several subgraphs define alike: the gateway may take it from any of them. */
export const SHAREABLE = { extensions: { directives: [{ name: 'shareable' }] } } as const;

/** Defined by several subgraphs but left out of the composed graph (each answers it on its own endpoint only). */
export const SHAREABLE_INACCESSIBLE = { extensions: { directives: [{ name: 'shareable' }, { name: 'inaccessible' }] } } as const;

const value = (v: unknown): ConstValueNode => {
  if (Array.isArray(v)) return { kind: Kind.LIST, values: v.map(value) };
  if (typeof v === 'boolean') return { kind: Kind.BOOLEAN, value: v };
  if (typeof v === 'number' && Number.isInteger(v)) return { kind: Kind.INT, value: String(v) };
  return { kind: Kind.STRING, value: String(v) };
};

const directiveNodes = (directives: Directive[]): ConstDirectiveNode[] =>
  directives.map((d) => ({
    kind: Kind.DIRECTIVE,
    name: { kind: Kind.NAME, value: d.name },
    arguments: Object.entries(d.args ?? {}).map(([name, v]) => ({
      kind: Kind.ARGUMENT,
      name: { kind: Kind.NAME, value: name },
      value: value(v),
    })),
  }));

/**
 * The type's definition with its directives: printSubgraphSchema, and so `_service { sdl }`, reads
 * a type's AST node and nothing else.
 */
function withDirectives(type: GraphQLNamedType): TypeDefinitionNode {
  const node = parse(printType(type)).definitions[0] as TypeDefinitionNode;
  const directives = directiveNodes(directivesOf(type));
  if ((isObjectType(type) || isInterfaceType(type) || isInputObjectType(type)) && 'fields' in node) {
    const fields = type.getFields() as Record<string, WithDirectives>;
    return {
      ...node,
      directives,
      fields: node.fields?.map((f) => ({ ...f, directives: directiveNodes(fieldDirectives(fields[f.name.value])) })),
    } as TypeDefinitionNode;
  }
  return { ...node, directives };
}

/** A field's own directives, and `@listSize` for a list that declares its most (for the gateway's cost count). */
function fieldDirectives(field: WithDirectives | undefined): Directive[] {
  const most = (field?.extensions as Record<string, unknown> | null | undefined)?.[MAX_ITEMS_EXTENSION];
  return [...directivesOf(field), ...(typeof most === 'number' ? [{ name: LIST_SIZE_DIRECTIVE, args: { assumedSize: most } }] : [])];
}

const resolvableEntity = (type: GraphQLNamedType): type is GraphQLObjectType =>
  isObjectType(type) && directivesOf(type).some((d) => d.name === 'key' && d.args?.resolvable !== false);

/** The subgraph a service serves: its schema, plus `_service { sdl }` and `_entities` for its entities. */
export function subgraphSchema(schema: GraphQLSchema): GraphQLSchema {
  const config = schema.toConfig();
  const query = schema.getQueryType();
  if (!query) throw new Error('a subgraph needs a Query type');
  for (const type of config.types) {
    if (!isIntrospectionType(type) && !isSpecifiedScalarType(type)) (type as { astNode?: unknown }).astNode = withDirectives(type);
  }
  const entities = config.types.filter(resolvableEntity);
  let sdl = '';
  const queryConfig = query.toConfig();
  const fields: GraphQLFieldConfigMap<unknown, unknown> = {
    ...(entities.length > 0 && {
      _entities: {
        ...entitiesField,
        type: new GraphQLNonNull(new GraphQLList(new GraphQLUnionType({ ...EntityType.toConfig(), types: entities }))),
      },
    }),
    _service: {
      ...serviceField,
      // The whole SDL is introspection by another name; the gateway's supergraph is composed from committed files.
      resolve: (_root: unknown, _args: unknown, contextValue: unknown) => {
        const context = contextValue as { access?: Access; introspection?: boolean };
        if (!context.introspection && !(context.access && may(context.access, 'operate')))
          throw new ForbiddenError('only an admin may read the subgraph SDL while introspection is off');
        return { sdl };
      },
    },
    ...queryConfig.fields,
  };
  const federatedQuery = new GraphQLObjectType({ ...queryConfig, fields });
  const subgraph = new GraphQLSchema({
    ...config,
    query: federatedQuery,
    types: config.types.map((t) => (t === query ? federatedQuery : t)),
    extensionASTNodes: [{ kind: Kind.SCHEMA_EXTENSION, directives: directiveNodes([{ name: 'link', args: FEDERATION_LINK }]) }],
  });
  sdl = printSubgraphSchema(subgraph);
  return subgraph;
}

/** The SDL a subgraph's `_service { sdl }` answers with: its schema with the federation directives. */
export const subgraphSdl = (schema: GraphQLSchema): string => printSubgraphSchema(schema);
