import { safeUrl } from '../safe-url.ts';
import type { Logger } from '../logger.ts';
import type { OtlpProtocol, Tracing } from './types.ts';

export * from './context.ts';
export * from './types.ts';

const PROTOCOLS: readonly string[] = ['http/protobuf', 'http/json', 'grpc'] satisfies OtlpProtocol[];

/**
 * The protocol OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL names; an error for
 * a value the specification does not define, so a typo fails at start rather than lose every span.
 */
export function otlpProtocol(env: NodeJS.ProcessEnv = process.env): OtlpProtocol {
  const variable = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const value = env[variable]?.trim() || 'http/protobuf';
  if (PROTOCOLS.includes(value)) return value as OtlpProtocol;
  throw new Error(`${variable}=${value} is not an OTLP protocol: use http/protobuf (the default), http/json or grpc`);
}

/**
 * Tracing for `service` when an OTLP endpoint is configured (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
 * OTEL_EXPORTER_OTLP_ENDPOINT, and neither OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none);
 * undefined otherwise, without loading any of OpenTelemetry. Throws on an OTLP protocol it cannot
 * speak (otlpProtocol).
 */
export async function startTracing(service: string, logger: Logger): Promise<Tracing | undefined> {
  const env = process.env;
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint || env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none') return undefined;
  const protocol = otlpProtocol(env);
  const { createTracing } = await import('./otel.ts');
  const tracing = await createTracing(service, logger, protocol);
  logger.info(
    { endpoint: safeUrl(endpoint), protocol, sampler: env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on' },
    `tracing on: spans exported over OTLP/${protocol === 'grpc' ? 'gRPC' : 'HTTP'}`,
  );
  return tracing;
}
