import { describe, expect, it } from 'vitest';
import { childOf, formatTraceparent, parseTraceparent, traceHeaders, withTraceparent } from './context.ts';

describe('W3C trace context', () => {
  it('reads a traceparent and continues its trace in a new span', () => {
    const parent = parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    expect(parent).toEqual({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', sampled: true });
    const child = childOf(parent);
    expect(child.traceId).toBe(parent?.traceId);
    expect(child.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(child.spanId).not.toBe(parent?.spanId);
    expect(parseTraceparent(traceHeaders(parent).traceparent)?.traceId).toBe(parent?.traceId);
  });

  it('keeps a trace left unsampled unsampled, in every span it continues', () => {
    const parent = parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00');
    expect(parent?.sampled).toBe(false);
    expect(traceHeaders(parent).traceparent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-00$/);
  });

  it("hands a span tracing started to the event as it is, for the event's publish span to continue", () => {
    const span = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', sampled: true, traced: true } as const;
    expect(traceHeaders(span).traceparent).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
  });

  it('gives an event nothing caused no traceparent of its own; its publish starts one, keeping any the event has', () => {
    expect(traceHeaders(undefined)).toEqual({});
    const bare: { headers: Record<string, string> } = { headers: {} };
    expect(withTraceparent(bare).headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const carried = { ...bare, headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00' } };
    expect(withTraceparent(carried)).toBe(carried);
  });

  it.each([
    undefined,
    42,
    '',
    'garbage',
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
  ])('ignores %j, starting a new trace instead', (value) => {
    expect(parseTraceparent(value)).toBeUndefined();
    expect(formatTraceparent(childOf(parseTraceparent(value)))).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });

  it('gives every new trace and span its own id, across many draws of randomness', () => {
    const traces = Array.from({ length: 2_000 }, () => childOf(undefined));
    expect(new Set(traces.map((t) => t.traceId)).size).toBe(traces.length);
    expect(new Set(traces.map((t) => t.spanId)).size).toBe(traces.length);
    for (const t of traces) expect(parseTraceparent(formatTraceparent(t))).toEqual(t);
  });
});
