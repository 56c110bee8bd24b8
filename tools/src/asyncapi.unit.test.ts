import { readFile } from 'node:fs/promises';
import { DiagnosticSeverity, Parser } from '@asyncapi/parser';
import { describe, expect, it } from 'vitest';
import { asyncApiDocument } from '@stockflow/contracts';
import { asyncApiFile, renderAsyncApi } from './asyncapi.ts';

// The parser's diagnostics and its DiagnosticSeverity come from two copies of @stoplight/types: compared as numbers.
const ERROR: number = DiagnosticSeverity.Error;

const errorsOf = async (input: Parameters<Parser['validate']>[0]) =>
  (await new Parser().validate(input)).filter((d) => Number(d.severity) === ERROR).map((d) => `${d.path.join('.')}: ${d.message}`);

describe('docs/asyncapi.yaml', () => {
  it('matches the document generated from the contracts (run `npm run asyncapi` after changing them)', async () => {
    expect(await readFile(asyncApiFile, 'utf8')).toBe(renderAsyncApi());
  });

  it('is a valid AsyncAPI document, its AMQP bindings included', async () => {
    expect(await errorsOf(await readFile(asyncApiFile, 'utf8'))).toEqual([]);
  });

  it('would be refused with a wrong AMQP binding: a queue channel that also names an exchange, an exchange type AMQP lacks', async () => {
    const queueAlsoExchange = asyncApiDocument();
    const channel = queueAlsoExchange.channels['queue.stock.orders'] as { bindings: { amqp: Record<string, unknown> } };
    channel.bindings.amqp.exchange = { name: 'inventory', type: 'topic' };
    expect((await errorsOf(queueAlsoExchange)).join('\n')).toMatch(/channels\.queue\.stock\.orders\.bindings\.amqp/);

    const unknownType = asyncApiDocument();
    const route = unknownType.channels['orders.order.created'] as { bindings: { amqp: { exchange: { type: string } } } };
    route.bindings.amqp.exchange.type = 'broadcast';
    expect((await errorsOf(unknownType)).join('\n')).toMatch(/channels\.orders\.order\.created\.bindings\.amqp/);
  });
});
