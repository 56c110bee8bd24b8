import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../logger.ts';
import { startTracing } from './index.ts';

const logger = createLogger({ name: 'test', level: 'silent' });
const OTEL = [
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  'OTEL_SDK_DISABLED',
  'OTEL_TRACES_EXPORTER',
  'OTEL_EXPORTER_OTLP_PROTOCOL',
  'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL',
];
const saved = Object.fromEntries(OTEL.map((k) => [k, process.env[k]]));

describe('startTracing', () => {
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  const withEnv = (env: Record<string, string>) => {
    for (const k of OTEL) delete process.env[k];
    Object.assign(process.env, env);
  };

  it('is off without an OTLP endpoint, or when the standard variables switch it off', async () => {
    withEnv({});
    expect(await startTracing('orders', logger)).toBeUndefined();
    withEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SDK_DISABLED: 'true' });
    expect(await startTracing('orders', logger)).toBeUndefined();
    withEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_TRACES_EXPORTER: 'none' });
    expect(await startTracing('orders', logger)).toBeUndefined();
  });

  it.each(['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'])('is on with %s', async (variable) => {
    withEnv({ [variable]: 'http://127.0.0.1:4318' });
    const tracing = await startTracing('orders', logger);
    expect(tracing).toBeDefined();
    await tracing?.shutdown();
  });

  it.each(['OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'])('starts with %s=grpc', async (variable) => {
    withEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4317', [variable]: 'grpc' });
    const tracing = await startTracing('orders', logger);
    expect(tracing).toBeDefined();
    await tracing?.shutdown();
  });

  it.each([
    ['OTEL_EXPORTER_OTLP_PROTOCOL', 'http/xml', /OTEL_EXPORTER_OTLP_PROTOCOL=http\/xml is not an OTLP protocol: use http\/protobuf/],
    ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'gRPC', /OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=gRPC is not an OTLP protocol: .*grpc/],
  ])('refuses to start with %s=%s, saying why', async (variable, value, message) => {
    withEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', [variable]: value });
    await expect(startTracing('orders', logger)).rejects.toThrow(message);
  });

  it('does not read the protocol while tracing is off', async () => {
    withEnv({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/xml' });
    expect(await startTracing('orders', logger)).toBeUndefined();
  });
});
