import { GraphQLError } from 'graphql';

/**
 * How the gateway tells a client that a service failed it, on both paths (forwarded whole, and
 * Hive's runtime for joins and subscriptions), without what the failure carries: the service's
 * address, the request the gateway made of it, the connection's raw error, the body of what
 * stands in front of it.
 *
 * - `unreachable`: the request never reached a service that could act on it (the connection was
 *   refused, a draining instance's 503 refused it before doing anything): safe to send again.
 * - `unknown`: it may have reached the service, which did not answer (the connection dropped under
 *   it, a load balancer's 502 or 504): a mutation may have taken effect, so read before retrying.
 * - `lost`: a subscription's stream from the service was cut mid-way: subscribe again.
 */
export type ServiceFailure = 'unreachable' | 'unknown' | 'lost';

const ANSWERS: Record<ServiceFailure, { code: string; what: string; log: string }> = {
  unreachable: { code: 'SUBGRAPH_UNREACHABLE', what: 'could not be reached', log: 'a service could not be reached' },
  unknown: {
    code: 'SUBGRAPH_OUTCOME_UNKNOWN',
    what: 'did not answer; whether the request took effect is not known',
    log: 'a service did not answer',
  },
  lost: { code: 'SUBGRAPH_UNREACHABLE', what: 'stopped answering', log: "a service's answer was cut off" },
};

/** The error a client gets for `failure` of `subgraph` (the name the supergraph gives the service). */
export const failureError = (failure: ServiceFailure, subgraph: string | undefined) => {
  const { code, what } = ANSWERS[failure];
  return {
    message: subgraph ? `The ${subgraph} service ${what}.` : `A service ${what}.`,
    extensions: { code, ...(subgraph && { subgraph }) },
  };
};

/** The gateway's log line for `failure`, a warning: the service's, not the client's nor the gateway's. */
export const failureLog = (failure: ServiceFailure): string => ANSWERS[failure].log;

/**
 * A service's HTTP status that is not its answer but what stands in front of it: a Stockflow
 * service's own draining 503 (`draining`: it carries DRAINING_HEADER) refused the request before
 * doing anything; any other 502, 503 or 504 (a load balancer's, a proxy's: Envoy answers 503 for a
 * connection reset under the request) may have come after the service had it.
 */
export function failureOfStatus(status: unknown, draining: boolean): ServiceFailure | undefined {
  if (status === 503 && draining) return 'unreachable';
  if (status === 502 || status === 503 || status === 504) return 'unknown';
  return undefined;
}

/** Codes of a connection that was never made, when a connect or a name lookup raised them (on an open connection, Linux reports an ICMP error too). */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
/** Codes of a connection failing under a request: Node's system errors, undici's socket error. */
const CONNECTION_FAILURES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT', 'UND_ERR_SOCKET']);

interface CodedError {
  code?: unknown;
  syscall?: unknown;
  name?: unknown;
}

/**
 * The errors in `error`'s chain that are not GraphQL errors (those are a service's own): through
 * `originalError`, `cause` (undici's fetch puts the socket's error under its own) and an
 * AggregateError's `errors` (Node tries each address a name such as localhost has).
 */
function chain(error: unknown, depth = 0): CodedError[] {
  if (typeof error !== 'object' || error === null || depth > 10) return [];
  const { originalError, cause, errors } = error as { originalError?: unknown; cause?: unknown; errors?: unknown };
  const own = error instanceof GraphQLError ? [] : [error as CodedError];
  const inner = Array.isArray(errors) ? errors.flatMap((e: unknown) => chain(e, depth + 1)) : [];
  return [...own, ...inner, ...chain(originalError ?? cause, depth + 1)];
}

const neverSent = ({ code, syscall }: CodedError): boolean =>
  code === 'UND_ERR_CONNECT_TIMEOUT' ||
  (typeof code === 'string' && NOT_CONNECTED.has(code) && (syscall === 'connect' || syscall === 'getaddrinfo'));

/** A request to a service that failed with `error` and no answer: never sent (unreachable) or perhaps acted on (unknown). */
export const failureOfError = (error: unknown): 'unreachable' | 'unknown' => (chain(error).some(neverSent) ? 'unreachable' : 'unknown');

/**
 * Whether `error` came of a service's connection failing under its answer (a subscription's stream
 * cut mid-way), by a connection failure's code anywhere in its chain. A subscriber that leaves is
 * no such failure: the runtime gives the service's stream up with an AbortError (whose code is a
 * number), and answers nothing.
 */
export const connectionLost = (error: unknown): boolean =>
  chain(error).some(({ code }) => typeof code === 'string' && CONNECTION_FAILURES.has(code));

/** Whether the gateway gave the request up itself (an AbortError: its client left), which is no failure of the service's. */
export const abandoned = (error: unknown): boolean => chain(error).some(({ name }) => name === 'AbortError');
