import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';

/** A span as an OTLP receiver got it, with its service and attributes made plain. */
export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  kind: number;
  attributes: Record<string, string | number | boolean | undefined>;
  /** Its status code (SPAN_STATUS). */
  status: number;
  /** The names of its events, in order. */
  events: string[];
}

/** OTLP's SpanKind numbers. */
export const SPAN_KIND = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const;

/** OTLP's status codes. */
export const SPAN_STATUS = { unset: 0, ok: 1, error: 2 } as const;

export interface OtlpReceiver {
  /** The base URL, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  url: string;
  spans: ReceivedSpan[];
  /** The content type of every export received, in order. */
  contentTypes: string[];
  close(): Promise<void>;
}

type Value = string | number | boolean | undefined;

// OTLP/JSON (the HTTP exporter's), where ids are hex strings and int64 values strings.
type JsonValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };
type JsonAttribute = { key: string; value: JsonValue };
interface JsonSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: JsonAttribute[];
  status?: { code?: number };
  events?: { name: string }[];
}
interface JsonExport {
  resourceSpans: { resource: { attributes: JsonAttribute[] }; scopeSpans: { spans: JsonSpan[] }[] }[];
}

const jsonValue = (v: JsonValue): Value =>
  v.stringValue ?? v.boolValue ?? v.doubleValue ?? (v.intValue === undefined ? undefined : Number(v.intValue));

function fromJson(body: Buffer): ReceivedSpan[] {
  const plain = (attributes: JsonAttribute[] = []) => Object.fromEntries(attributes.map((a) => [a.key, jsonValue(a.value)]));
  const spans: ReceivedSpan[] = [];
  for (const { resource, scopeSpans } of (JSON.parse(body.toString('utf8')) as JsonExport).resourceSpans) {
    const service = String(plain(resource.attributes)['service.name']);
    for (const { spans: list } of scopeSpans)
      for (const s of list)
        spans.push({
          service,
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId || undefined,
          name: s.name,
          kind: s.kind,
          attributes: plain(s.attributes),
          status: s.status?.code ?? SPAN_STATUS.unset,
          events: (s.events ?? []).map((e) => e.name),
        });
  }
  return spans;
}

/**
 * The protobuf wire format, read field by field: enough of it to decode an ExportTraceServiceRequest
 * (opentelemetry/proto/collector/trace/v1) without a schema compiler. Each field is its number and
 * either a varint (as a bigint, int64 values included) or the bytes of a length-delimited field.
 */
function* fields(buf: Uint8Array): Generator<[number, bigint | Uint8Array]> {
  let pos = 0;
  const varint = () => {
    let value = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (pos >= buf.length) throw new Error('truncated varint');
      const byte = buf[pos++] as number;
      value |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return value;
    }
  };
  while (pos < buf.length) {
    const tag = Number(varint());
    const [field, wireType] = [tag >>> 3, tag & 7];
    if (wireType === 0) yield [field, varint()];
    else if (wireType === 2) {
      const length = Number(varint());
      yield [field, buf.subarray(pos, pos + length)];
      pos += length;
    } else if (wireType === 1 || wireType === 5) {
      const size = wireType === 1 ? 8 : 4;
      yield [field, buf.subarray(pos, pos + size)];
      pos += size;
    } else throw new Error(`unexpected wire type ${wireType}`);
  }
}

const bytes = (v: bigint | Uint8Array) => v as Uint8Array;
const text = (v: bigint | Uint8Array) => Buffer.from(bytes(v)).toString('utf8');
const hex = (v: bigint | Uint8Array) => Buffer.from(bytes(v)).toString('hex');

function anyValue(buf: Uint8Array): Value {
  for (const [field, v] of fields(buf)) {
    if (field === 1) return text(v);
    if (field === 2) return v === 1n;
    if (field === 3) return Number(BigInt.asIntN(64, v as bigint));
    if (field === 4) return Buffer.from(bytes(v)).readDoubleLE(0);
  }
  return undefined;
}

function keyValue(buf: Uint8Array): [string, Value] {
  let key = '';
  let value: Value;
  for (const [field, v] of fields(buf)) {
    if (field === 1) key = text(v);
    else if (field === 2) value = anyValue(bytes(v));
  }
  return [key, value];
}

function span(buf: Uint8Array, service: string): ReceivedSpan {
  const s: ReceivedSpan = {
    service,
    traceId: '',
    spanId: '',
    parentSpanId: undefined,
    name: '',
    kind: 0,
    attributes: {},
    status: SPAN_STATUS.unset,
    events: [],
  };
  for (const [field, v] of fields(buf)) {
    if (field === 1) s.traceId = hex(v);
    else if (field === 2) s.spanId = hex(v);
    else if (field === 4) s.parentSpanId = hex(v) || undefined;
    else if (field === 5) s.name = text(v);
    else if (field === 6) s.kind = Number(v);
    else if (field === 9) {
      const [key, value] = keyValue(bytes(v));
      s.attributes[key] = value;
    } else if (field === 11) {
      for (const [f, e] of fields(bytes(v))) if (f === 2) s.events.push(text(e));
    } else if (field === 15) {
      for (const [f, c] of fields(bytes(v))) if (f === 3) s.status = Number(c);
    }
  }
  return s;
}

function fromProtobuf(body: Buffer): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const [field, resourceSpans] of fields(body)) {
    if (field !== 1) continue;
    let service = '';
    const scopes: Uint8Array[] = [];
    for (const [f, v] of fields(bytes(resourceSpans))) {
      if (f === 1)
        for (const [a, attribute] of fields(bytes(v))) {
          const [key, value] = a === 1 ? keyValue(bytes(attribute)) : [];
          if (key === 'service.name') service = String(value);
        }
      else if (f === 2) scopes.push(bytes(v));
    }
    for (const scope of scopes) for (const [f, v] of fields(scope)) if (f === 2) spans.push(span(bytes(v), service));
  }
  return spans;
}

/**
 * An OTLP/HTTP trace receiver on loopback, what a collector would get: it takes both encodings
 * the OTLP/HTTP specification defines, protobuf (application/x-protobuf) and JSON
 * (application/json), records which one each export used, and decodes the spans of either.
 */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const contentTypes: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
      if (req.url !== '/v1/traces' || req.method !== 'POST') return res.writeHead(404).end();
      contentTypes.push(type);
      const body = Buffer.concat(chunks);
      if (type === 'application/json') {
        spans.push(...fromJson(body));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } else if (type === 'application/x-protobuf') {
        spans.push(...fromProtobuf(body));
        // An empty ExportTraceServiceResponse.
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      } else res.writeHead(415).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    contentTypes,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const raw = (b: Buffer) => b;

/**
 * An OTLP/gRPC trace receiver on loopback: the collector's TraceService, its one method taking
 * the same ExportTraceServiceRequest as OTLP/HTTP's protobuf, here as raw bytes decoded as above
 * (no .proto files loaded). Its exports are recorded as `application/grpc`.
 */
export async function startOtlpGrpcReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const contentTypes: string[] = [];
  const server = new grpc.Server();
  const traceService: grpc.ServiceDefinition = {
    Export: {
      path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      requestStream: false,
      responseStream: false,
      requestSerialize: raw,
      requestDeserialize: raw,
      responseSerialize: raw,
      responseDeserialize: raw,
    },
  };
  server.addService(traceService, {
    Export(call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
      contentTypes.push('application/grpc');
      spans.push(...fromProtobuf(call.request));
      // An empty ExportTraceServiceResponse.
      callback(null, Buffer.alloc(0));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    contentTypes,
    close: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  };
}

/**
 * The spans whose parent is none of `spans` nor of `callers` (the span ids a test sent as its own
 * traceparent): spans pointing to a parent no backend will ever see.
 */
export function missingParents(spans: readonly ReceivedSpan[], callers: readonly string[] = []): ReceivedSpan[] {
  const known = new Set([...callers, ...spans.map((s) => s.spanId)]);
  return spans.filter((s) => s.parentSpanId !== undefined && !known.has(s.parentSpanId));
}
