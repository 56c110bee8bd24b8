import {
  Kind,
  type ConstDirectiveNode,
  type DocumentNode,
  type FragmentDefinitionNode,
  type SelectionSetNode,
  type TypeNode,
} from 'graphql';

const namedType = (type: TypeNode): string => (type.kind === Kind.NAMED_TYPE ? type.name.value : namedType(type.type));
const BUILT_IN_SCALARS = new Set(['String', 'Int', 'Float', 'Boolean', 'ID']);

const argument = (directive: ConstDirectiveNode, name: string) => directive.arguments?.find((a) => a.name.value === name)?.value;
const enumArgument = (directive: ConstDirectiveNode, name: string) => {
  const value = argument(directive, name);
  return value?.kind === Kind.ENUM ? value.value : undefined;
};
const isTrue = (directive: ConstDirectiveNode, name: string) => {
  const value = argument(directive, name);
  return value?.kind === Kind.BOOLEAN && value.value;
};

/**
 * Which one subgraph can answer a whole document as it came, read off the supergraph's join
 * directives; undefined when none can (the runtime must plan it).
 *
 * A document goes whole to subgraph S when S resolves every field it selects, in every operation
 * and fragment it holds (S validates the whole document, not only the operation asked for), knows
 * every type it names (fragment conditions, variables), and nothing could reach S that the public
 * graph hides: introspection (S would describe its own schema, `_entities` and all) and variables
 * of an input type or enum with an @inaccessible member (a literal is checked against the public
 * graph; a variable's value only at S) go to the runtime, and so do variables of an input type or
 * enum several subgraphs define (merged, what one lacks is dropped from the graph unmarked). Fields with `requires` or `provides`,
 * and abstract types, are left to the runtime as well: none exists in this graph, and forwarding
 * them would need the planner's knowledge.
 */
export function subgraphRouter(supergraph: DocumentNode): (document: DocumentNode) => string | undefined {
  // Each subgraph a bit: a selection's owners are the AND of its fields' owners.
  const graphBits = new Map<string, number>();
  const graphNames: string[] = [];
  const typeGraphs = new Map<string, number>();
  const fieldGraphs = new Map<string, number>();
  const fieldTypes = new Map<string, string>();
  const roots = new Map<string, string>([
    ['query', 'Query'],
    ['mutation', 'Mutation'],
    ['subscription', 'Subscription'],
  ]);
  const abstractTypes = new Set<string>();
  const inputFields = new Map<string, string[]>();
  const hidden = new Set<string>();
  const isInaccessible = (node: { directives?: readonly ConstDirectiveNode[] | undefined }) =>
    node.directives?.some((d) => d.name.value === 'inaccessible') ?? false;

  for (const definition of supergraph.definitions) {
    if (definition.kind === Kind.ENUM_TYPE_DEFINITION && definition.name.value === 'join__Graph') {
      for (const value of definition.values ?? []) {
        const name = value.directives?.find((d) => d.name.value === 'join__graph');
        const label = name && argument(name, 'name');
        graphBits.set(value.name.value, 1 << graphNames.length);
        graphNames.push(label?.kind === Kind.STRING ? label.value : value.name.value.toLowerCase());
      }
    }
  }
  const bitOf = (graph: string | undefined) => (graph === undefined ? 0 : (graphBits.get(graph) ?? 0));
  const everyGraph = (1 << graphNames.length) - 1;

  for (const definition of supergraph.definitions) {
    if (definition.kind === Kind.SCHEMA_DEFINITION) {
      for (const root of definition.operationTypes) roots.set(root.operation, root.type.name.value);
      continue;
    }
    if (
      definition.kind !== Kind.OBJECT_TYPE_DEFINITION &&
      definition.kind !== Kind.INPUT_OBJECT_TYPE_DEFINITION &&
      definition.kind !== Kind.ENUM_TYPE_DEFINITION &&
      definition.kind !== Kind.SCALAR_TYPE_DEFINITION &&
      definition.kind !== Kind.INTERFACE_TYPE_DEFINITION &&
      definition.kind !== Kind.UNION_TYPE_DEFINITION
    )
      continue;
    const type = definition.name.value;
    let graphs = 0;
    for (const d of definition.directives ?? []) if (d.name.value === 'join__type') graphs |= bitOf(enumArgument(d, 'graph'));
    typeGraphs.set(type, graphs);
    // An input type or enum several subgraphs define is merged: a field or value one of them lacks
    // is dropped from the graph without being marked, yet the others would take it in a variable.
    const shared = (graphs & (graphs - 1)) !== 0;
    if (shared && (definition.kind === Kind.INPUT_OBJECT_TYPE_DEFINITION || definition.kind === Kind.ENUM_TYPE_DEFINITION))
      hidden.add(type);
    if (definition.kind === Kind.INTERFACE_TYPE_DEFINITION || definition.kind === Kind.UNION_TYPE_DEFINITION) abstractTypes.add(type);
    if (definition.kind === Kind.ENUM_TYPE_DEFINITION && definition.values?.some(isInaccessible)) hidden.add(type);
    if (definition.kind === Kind.INPUT_OBJECT_TYPE_DEFINITION) {
      inputFields.set(
        type,
        (definition.fields ?? []).map((f) => namedType(f.type)),
      );
      if (definition.fields?.some(isInaccessible)) hidden.add(type);
    }
    if (definition.kind !== Kind.OBJECT_TYPE_DEFINITION) continue;
    for (const field of definition.fields ?? []) {
      const key = `${type}.${field.name.value}`;
      fieldTypes.set(key, namedType(field.type));
      const joins = field.directives?.filter((d) => d.name.value === 'join__field') ?? [];
      let owners = joins.length === 0 ? graphs : 0;
      for (const join of joins) {
        // Left to the planner: a field that needs another subgraph's fields, or that S only mirrors.
        if (argument(join, 'requires') || argument(join, 'provides') || argument(join, 'graph') === undefined) {
          owners = 0;
          break;
        }
        if (!isTrue(join, 'external') && !isTrue(join, 'usedOverridden')) owners |= bitOf(enumArgument(join, 'graph'));
      }
      fieldGraphs.set(key, owners);
    }
  }
  // An input type that holds a hidden one anywhere inside it is hidden too.
  for (let grew = true; grew;) {
    grew = false;
    for (const [type, members] of inputFields)
      if (!hidden.has(type) && members.some((m) => hidden.has(m))) {
        hidden.add(type);
        grew = true;
      }
  }

  const typeOwners = (type: string) => (BUILT_IN_SCALARS.has(type) ? everyGraph : (typeGraphs.get(type) ?? 0));

  const routes = new WeakMap<DocumentNode, string | undefined>();
  return (document) => {
    if (routes.has(document)) return routes.get(document);
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
    // A fragment's owners do not depend on where it is spread (its type condition is its own):
    // each is walked once, or fragments spreading fragments K times each would cost K^depth.
    const fragmentOwners = new Map<string, number>();
    const ownersOfFragment = (name: string): number => {
      const known = fragmentOwners.get(name);
      if (known !== undefined) return known;
      const fragment = fragments.get(name);
      const mask = fragment ? owners(fragment.selectionSet, fragment.typeCondition.name.value) : 0;
      fragmentOwners.set(name, mask);
      return mask;
    };

    const owners = (selectionSet: SelectionSetNode, type: string): number => {
      if (abstractTypes.has(type)) return 0;
      let mask = typeOwners(type);
      for (const selection of selectionSet.selections) {
        if (mask === 0) return 0;
        if (selection.kind === Kind.FIELD) {
          const name = selection.name.value;
          if (name === '__typename') continue;
          // Introspection (__schema, __type) is the public graph's, never a subgraph's.
          const key = `${type}.${name}`;
          mask &= fieldGraphs.get(key) ?? 0;
          const returned = fieldTypes.get(key);
          if (selection.selectionSet && returned !== undefined) mask &= owners(selection.selectionSet, returned);
        } else if (selection.kind === Kind.INLINE_FRAGMENT) {
          mask &= owners(selection.selectionSet, selection.typeCondition?.name.value ?? type);
        } else {
          mask &= ownersOfFragment(selection.name.value);
        }
      }
      return mask;
    };

    let mask = everyGraph;
    for (const definition of document.definitions) {
      if (definition.kind === Kind.OPERATION_DEFINITION) {
        mask &= owners(definition.selectionSet, roots.get(definition.operation) ?? '');
        for (const variable of definition.variableDefinitions ?? []) {
          const type = namedType(variable.type);
          mask &= hidden.has(type) ? 0 : typeOwners(type);
        }
      } else if (definition.kind === Kind.FRAGMENT_DEFINITION) {
        // Validated by S even when no operation spreads it.
        mask &= ownersOfFragment(definition.name.value);
      }
    }
    // Nothing any one service owns (`{ __typename }`): the runtime answers it without asking one.
    const bit = mask === everyGraph ? 0 : mask & -mask;
    const graph = bit === 0 ? undefined : graphNames[Math.log2(bit)];
    routes.set(document, graph);
    return graph;
  };
}
