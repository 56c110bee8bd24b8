import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { TypeScriptFileGenerator } from '@asyncapi/modelina';
import ts from 'typescript';
import { parse } from 'yaml';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_ROUTES, EVENT_SCHEMAS, type EventName } from '@stockflow/contracts';
import { asyncApiFile } from './asyncapi.ts';

/**
 * What another team does with docs/asyncapi.yaml: generate TypeScript models of the event payloads with Modelina (the library behind
 * `asyncapi generate models`), then compile code against them. Interfaces with the wire's property names and string unions for
 * enums, so that a parsed JSON body is a value of its model; `additionalProperties` (a consumer ignores unknown extras) would
 * otherwise become a property of every model.
 */
const generator = new TypeScriptFileGenerator({
  modelType: 'interface',
  enumType: 'union',
  rawPropertyNames: true,
  moduleSystem: 'ESM',
  processorOptions: { jsonSchema: { ignoreAdditionalProperties: true } },
});

const COMPILER_OPTIONS: ts.CompilerOptions = {
  strict: true,
  noUncheckedIndexedAccess: true,
  noEmit: true,
  target: ts.ScriptTarget.ES2022,
  // Modelina imports its models without a file extension, as a bundler resolves them.
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  lib: ['lib.es2022.d.ts'],
  types: [],
};

interface DocumentMessage {
  payload?: { $ref?: string };
  examples?: { payload: Record<string, unknown> }[];
}

const eventNames = Object.keys(EVENT_ROUTES) as EventName[];

/** A consumer of the Order Service's two queues that reads fields of every event it gets (the models are imported with the examples). */
const CONSUMER = `
export function describeAnswer(body: string): string {
  const answer = JSON.parse(body) as StockReserved | StockRejected | StockReleased;
  switch (answer.event) {
    case 'StockReserved':
      return \`\${answer.order_id}: \${answer.items.reduce((sum, line) => sum + line.quantity * (line.unit_price_cents ?? 0), 0)} cents held\`;
    case 'StockRejected':
      return (answer.lines ?? []).map((line) => (line.available === null ? line.product_id : line.problem)).join(', ') || answer.reason;
    case 'StockReleased':
      return \`\${answer.items.length} lines released\`;
  }
}

export function paid(body: string): number | undefined {
  const payment = JSON.parse(body) as PaymentSucceeded | PaymentFailed;
  return payment.event === 'PaymentSucceeded' ? payment.amount_cents : undefined;
}
`;

const importsOf = (names: readonly string[]) => names.map((n) => `import type { ${n} } from './${n}';`).join('\n');

/** One declaration a line, so that each diagnostic names the payload it is about. */
const declarations = (payloads: { name: EventName; label: string; payload: unknown }[]) =>
  importsOf(eventNames) +
  '\n' +
  payloads.map((p) => `export const ${p.label}_${p.name}: ${p.name} = ${JSON.stringify(p.payload)};`).join('\n') +
  '\n';

/** The properties of a zod object, its arrays' objects included: `items[].unit_price_cents?`, a `?` where it may be absent. */
function zodProperties(schema: z.ZodObject, prefix = ''): string[] {
  return Object.entries(schema.shape as Record<string, z.ZodType>).flatMap(([key, field]) => {
    const own = `${prefix}${key}${field.safeParse(undefined).success ? '?' : ''}`;
    let inner: z.ZodType = field;
    while (inner instanceof z.ZodOptional || inner instanceof z.ZodNullable) inner = inner.unwrap() as z.ZodType;
    if (inner instanceof z.ZodArray && inner.element instanceof z.ZodObject)
      return [own, ...zodProperties(inner.element, `${prefix}${key}[].`)];
    if (inner instanceof z.ZodObject) return [own, ...zodProperties(inner, `${prefix}${key}.`)];
    return [own];
  });
}

const isObjectModel = (type: ts.Type, checker: ts.TypeChecker) =>
  (type.flags & ts.TypeFlags.Object) !== 0 && !checker.isArrayType(type) && checker.getPropertiesOfType(type).length > 0;

/** The same of a generated model, as the compiler reads it. */
function modelProperties(type: ts.Type, checker: ts.TypeChecker, prefix = ''): string[] {
  return checker.getPropertiesOfType(type).flatMap((property) => {
    const own = `${prefix}${property.name}${property.flags & ts.SymbolFlags.Optional ? '?' : ''}`;
    const value = checker.getNonNullableType(checker.getTypeOfSymbol(property));
    if (checker.isArrayType(value)) {
      const element = checker.getTypeArguments(value as ts.TypeReference)[0];
      if (element && isObjectModel(element, checker)) return [own, ...modelProperties(element, checker, `${prefix}${property.name}[].`)];
    }
    if (isObjectModel(value, checker)) return [own, ...modelProperties(value, checker, `${prefix}${property.name}.`)];
    return [own];
  });
}

describe('a client generated from docs/asyncapi.yaml with Modelina', () => {
  let dir: string;
  let modelNames: string[];
  let messages: Record<string, DocumentMessage>;
  let program: ts.Program;
  let wrongFile: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'stockflow-asyncapi-client-'));
    messages = (parse(await readFile(asyncApiFile, 'utf8')) as { components: { messages: Record<string, DocumentMessage> } }).components
      .messages;
    // From the file, as the CLI reads it: a document the parser refuses fails here.
    const models = await generator.generateToFiles(pathToFileURL(asyncApiFile).href, dir, { exportType: 'named' }, true);
    modelNames = models.map((m) => m.modelName);

    const examples = eventNames.map((name) => ({ name, label: 'example', payload: messages[name]?.examples?.[0]?.payload }));
    await writeFile(path.join(dir, 'consumer.ts'), declarations(examples) + CONSUMER);
    const wrong = examples.flatMap(({ name, payload }) => {
      const withoutOrderId = { ...payload };
      delete withoutOrderId.order_id;
      return [
        { name, label: 'numericOrderId', payload: { ...payload, order_id: 12345 } },
        { name, label: 'noOrderId', payload: withoutOrderId },
      ];
    });
    wrongFile = path.join(dir, 'wrong.ts');
    await writeFile(wrongFile, declarations(wrong));
    program = ts.createProgram(
      [path.join(dir, 'consumer.ts'), wrongFile, ...modelNames.map((n) => path.join(dir, `${n}.ts`))],
      COMPILER_OPTIONS,
    );
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const diagnostics = (inWrongFile: boolean) =>
    ts.getPreEmitDiagnostics(program).filter((d) => (d.file?.fileName === wrongFile) === inWrongFile);
  const format = (list: readonly ts.Diagnostic[]) =>
    list.map((d) => `${d.file ? path.basename(d.file.fileName) : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);

  it("has a model for every event's payload, named after the event, and an example of each to try it with", () => {
    const documented = Object.keys(messages).filter((name) => messages[name]?.payload?.$ref === `#/components/schemas/${name}`);
    expect(documented.sort()).toEqual([...eventNames].sort());
    expect(modelNames).toEqual(expect.arrayContaining(eventNames));
    for (const name of eventNames) expect(messages[name]?.examples?.[0]?.payload, name).toBeDefined();
  });

  it("compiles, with a consumer that reads the events' fields and each event's documented example given its model's type", () => {
    expect(format(diagnostics(false))).toEqual([]);
  });

  it("gives each event's model exactly the properties of its zod schema, each required or optional as there, lines included", () => {
    const checker = program.getTypeChecker();
    for (const name of eventNames) {
      const file = program.getSourceFile(path.join(dir, `${name}.ts`));
      const symbol = file && checker.getSymbolAtLocation(file);
      const exported = symbol && checker.getExportsOfModule(symbol).find((s) => s.name === name);
      expect(exported, `${name}.ts exports ${name}`).toBeDefined();
      const declared = exported!.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported!) : exported!;
      const model = checker.getDeclaredTypeOfSymbol(declared);
      expect(modelProperties(model, checker).sort(), name).toEqual(zodProperties(EVENT_SCHEMAS[name]).sort());
    }
  });

  it('refuses every event with a number for order_id, or without it', () => {
    const source = program.getSourceFile(wrongFile) as ts.SourceFile;
    const refused = new Set(diagnostics(true).map((d) => source.text.slice(0, d.start).split('\n').length));
    const declared = source.text.split('\n').flatMap((line, i) => (line.startsWith('export const ') ? [i + 1] : []));
    expect(declared).toHaveLength(eventNames.length * 2);
    expect([...refused].sort((a, b) => a - b)).toEqual(declared);
  });
});
