import {
  getArgumentValues,
  getNamedType,
  getNullableType,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  GraphQLList,
  isCompositeType,
  isInterfaceType,
  isObjectType,
  Kind,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import { PAGE_LIMITS } from './page-limits.ts';

/**
 * How many items a list field without `first` may return at most, declared on the field
 * (Pothos: `extensions: { maxItems: 100 }`); a list that declares nothing counts as the
 * largest page, PAGE_LIMITS.maxPageSize.
 */
export const MAX_ITEMS_EXTENSION = 'maxItems';

/**
 * The same most in SDL: Apollo Federation's `@listSize(assumedSize: N)`, which the subgraphs print
 * for MAX_ITEMS_EXTENSION and the supergraph keeps, so the gateway counts a list as its service does.
 */
export const LIST_SIZE_DIRECTIVE = 'listSize';

/**
 * What one database query weighs, in fields. A paged field (one that takes `first`) runs its
 * page's query each time it appears, and a connection a count of its whole list as well, however
 * few rows it asks for: 20 aliases of `products(first: 500) { nodes { movements(first: 0) {
 * totalCount } } }` return 40,000 fields but run 20,000 queries. At 100, a request within the
 * default limit runs at most about 2,000; the audit's pages (100 products, each with 500 ledger
 * rows) stay within it.
 */
export const QUERY_COST = 100;

/** The federation field through which the gateway asks a subgraph for the entities another one refers to. */
const ENTITIES_FIELD = '_entities';

/**
 * What an operation asks the server to produce, counted before it runs with the request's own
 * variables: every field counts 1 each time it appears in the answer, so a field inside lists
 * counts once per item of every list it is in.
 *
 * - A field that takes `first` returns that many items: the value written, the variable's value
 *   (or the variable's default), or the argument's schema default; with none of them, the
 *   default page size. A connection (a field with `first` that returns an object) counts its
 *   page's rows as well, and the lists in it (`nodes`, `edges`) are that page.
 * - A field that takes `first` also counts QUERY_COST for its page's query, a connection twice
 *   that (its page and its count), wherever it appears.
 * - Any other list counts as its declared most (MAX_ITEMS_EXTENSION), else the largest page.
 * - `_entities` (federation) counts one item per representation it is given, and one query.
 * - Aliases count separately; fragments count where they are spread; introspection fields
 *   (`__schema`, `__type`, `__typename`) count 1, whatever they select.
 *
 * `dependsOnVariables` says whether another request with other variables may cost otherwise.
 */
export function operationCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown>,
): { cost: number; dependsOnVariables: boolean } {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  // A fragment spread many times (or fragments spreading each other) is counted once per page size.
  const fragmentCosts = new Map<string, number>();
  let dependsOnVariables = false;

  const firstOf = (field: GraphQLField<unknown, unknown>, node: Parameters<typeof getArgumentValues>[1]): number | undefined => {
    if (!field.args.some((arg) => arg.name === 'first')) return undefined;
    const written = node.arguments?.find((arg) => arg.name.value === 'first');
    if (written?.value.kind === Kind.VARIABLE) dependsOnVariables = true;
    try {
      const first = getArgumentValues(field, node, variables).first;
      return typeof first === 'number' ? Math.max(first, 0) : PAGE_LIMITS.defaultPageSize;
    } catch {
      // Arguments that do not coerce fail this field when it runs: nothing under it is produced.
      return 0;
    }
  };

  /**
   * The gateway's `_entities(representations: [...])` returns one entity per representation, read
   * in one batched query per request: many representations cost as many items as they are.
   */
  const representationsOf = (field: GraphQLField<unknown, unknown>, node: Parameters<typeof getArgumentValues>[1]): number => {
    if (node.arguments?.some((arg) => arg.value.kind === Kind.VARIABLE)) dependsOnVariables = true;
    try {
      const { representations } = getArgumentValues(field, node, variables);
      return Array.isArray(representations) ? representations.length : 0;
    } catch {
      return 0;
    }
  };

  const selectionCost = (parent: GraphQLCompositeType, selectionSet: SelectionSetNode, page: number | undefined): number => {
    let cost = 0;
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.INLINE_FRAGMENT) {
        const type = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent;
        cost += isCompositeType(type) ? selectionCost(type, selection.selectionSet, page) : 0;
      } else if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const key = `${selection.name.value}\u0000${page ?? ''}`;
        let fragmentCost = fragmentCosts.get(key);
        if (fragmentCost === undefined) {
          const fragment = fragments.get(selection.name.value);
          const type = fragment && schema.getType(fragment.typeCondition.name.value);
          fragmentCost = fragment && isCompositeType(type) ? selectionCost(type, fragment.selectionSet, page) : 0;
          fragmentCosts.set(key, fragmentCost);
        }
        cost += fragmentCost;
      } else {
        const name = selection.name.value;
        const field = isObjectType(parent) || isInterfaceType(parent) ? parent.getFields()[name] : undefined;
        if (name.startsWith('__') || !field) {
          cost += 1;
          continue;
        }
        const first = firstOf(field, selection);
        const type = getNamedType(field.type);
        if (name === ENTITIES_FIELD && parent === schema.getQueryType()) {
          const each = selection.selectionSet && isCompositeType(type) ? selectionCost(type, selection.selectionSet, undefined) : 0;
          cost += representationsOf(field, selection) * (1 + each) + QUERY_COST;
        } else if (getNullableType(field.type) instanceof GraphQLList) {
          const items = first ?? page ?? maxItems(field);
          const each = selection.selectionSet && isCompositeType(type) ? selectionCost(type, selection.selectionSet, undefined) : 0;
          cost += items * (1 + each) + (first === undefined ? 0 : QUERY_COST);
        } else if (selection.selectionSet && isCompositeType(type)) {
          cost += 1 + (first === undefined ? 0 : first + 2 * QUERY_COST) + selectionCost(type, selection.selectionSet, first);
        } else {
          cost += 1;
        }
      }
    }
    return cost;
  };

  const root = schema.getRootType(operation.operation);
  const cost = root ? selectionCost(root, operation.selectionSet, undefined) : 0;
  return { cost, dependsOnVariables };
}

/** A list's declared most: the field's extension (a service's schema), else its `@listSize` (the supergraph). */
function maxItems(field: GraphQLField<unknown, unknown>): number {
  const declared = field.extensions[MAX_ITEMS_EXTENSION];
  if (typeof declared === 'number') return declared;
  const assumed = field.astNode?.directives
    ?.find((d) => d.name.value === LIST_SIZE_DIRECTIVE)
    ?.arguments?.find((a) => a.name.value === 'assumedSize')?.value;
  return assumed?.kind === Kind.INT ? Number(assumed.value) : PAGE_LIMITS.maxPageSize;
}

/**
 * The cost limit as one check, a service's pipeline's and the gateway's: run before execution with
 * the request's variables. A document's cost is kept (per document object, which both cache
 * per query text) when its variables cannot change it.
 */
export function costLimit(schema: GraphQLSchema, maxCost: number) {
  const fixed = new WeakMap<DocumentNode, Map<string, number>>();
  return (document: DocumentNode, operationName: string | null | undefined, rawVariables: unknown): GraphQLError | undefined => {
    const known = fixed.get(document)?.get(operationName ?? '');
    let cost = known;
    if (cost === undefined) {
      const operation = getOperationAST(document, operationName);
      if (!operation) return undefined;
      const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], (rawVariables ?? {}) as Record<string, unknown>);
      // Variables that do not coerce fail the request before anything runs; execution says why.
      if (coerced.errors) return undefined;
      const counted = operationCost(schema, document, operation, coerced.coerced);
      cost = counted.cost;
      if (!counted.dependsOnVariables) {
        const costs = fixed.get(document) ?? new Map<string, number>();
        costs.set(operationName ?? '', cost);
        fixed.set(document, costs);
      }
    }
    if (cost <= maxCost) return undefined;
    return new GraphQLError(
      `Cost limit of ${maxCost} exceeded: this request asks for ${Math.round(cost)} (each field counted once per item of the lists it is in, each database query ${QUERY_COST}).`,
      { extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } },
    );
  };
}
