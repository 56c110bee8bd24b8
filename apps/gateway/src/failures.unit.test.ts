import { GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { abandoned, connectionLost, failureOfError, failureOfStatus } from './failures.ts';

/** An error with a Node-style string code (and the call that raised it), as node:net, node:dns and undici make them. */
const coded = (message: string, code: string, syscall?: string) => Object.assign(new Error(message), { code, ...(syscall && { syscall }) });
/** How the runtime hands over an error it got under a service's answer: GraphQL errors wrapping it. */
const wrapped = (inner: Error) =>
  new GraphQLError(inner.message, {
    extensions: { serviceName: 'orders' },
    originalError: new GraphQLError(inner.message, { originalError: inner }),
  });

describe("what a service's failure is", () => {
  it('given a stream cut under node:http (ECONNRESET) or undici (UND_ERR_SOCKET under its TypeError), calls the connection lost', () => {
    expect(connectionLost(wrapped(coded('aborted', 'ECONNRESET')))).toBe(true);
    expect(connectionLost(wrapped(new TypeError('terminated', { cause: coded('other side closed', 'UND_ERR_SOCKET') })))).toBe(true);
  });

  it('given a subscriber that left (an AbortError), an application error with a code, or a service error, does not', () => {
    expect(connectionLost(wrapped(new DOMException('This operation was aborted', 'AbortError')))).toBe(false);
    expect(connectionLost(wrapped(coded('no such order', 'NOT_FOUND')))).toBe(false);
    expect(connectionLost(wrapped(coded('a stream in a bad state', 'ERR_INVALID_STATE')))).toBe(false);
    expect(connectionLost(new GraphQLError('You may not.', { extensions: { code: 'ECONNRESET', serviceName: 'orders' } }))).toBe(false);
  });

  it('given a connect refused (even among the addresses of one name), a name not found or a connect timeout, calls the service unreachable', () => {
    const refused = new TypeError('fetch failed', {
      cause: new AggregateError([
        coded('connect ECONNREFUSED ::1:1', 'ECONNREFUSED', 'connect'),
        coded('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED', 'connect'),
      ]),
    });
    expect(failureOfError(wrapped(refused))).toBe('unreachable');
    expect(failureOfError(coded('getaddrinfo ENOTFOUND inventory', 'ENOTFOUND', 'getaddrinfo'))).toBe('unreachable');
    expect(failureOfError(coded('Connect Timeout Error', 'UND_ERR_CONNECT_TIMEOUT'))).toBe('unreachable');
  });

  it('given a connection dropped under the request, an ICMP error on an open one, or a service error naming a code, calls the outcome unknown', () => {
    expect(failureOfError(coded('other side closed', 'UND_ERR_SOCKET'))).toBe('unknown');
    expect(failureOfError(coded('read EHOSTUNREACH', 'EHOSTUNREACH', 'read'))).toBe('unknown');
    expect(failureOfError(new GraphQLError('refused', { extensions: { code: 'ECONNREFUSED' } }))).toBe('unknown');
  });

  it('given an AbortError anywhere in the chain, calls the request abandoned by the gateway, and not otherwise', () => {
    expect(abandoned(wrapped(new DOMException('This operation was aborted', 'AbortError')))).toBe(true);
    expect(abandoned(wrapped(coded('aborted', 'ECONNRESET')))).toBe(false);
  });

  it("given a status, tells a Stockflow service's draining 503 (unreachable) from any other 502, 503 or 504 (unknown), and passes the rest", () => {
    expect(failureOfStatus(503, true)).toBe('unreachable');
    expect([503, 502, 504, 500, 200].map((status) => failureOfStatus(status, false))).toEqual([
      'unknown',
      'unknown',
      'unknown',
      undefined,
      undefined,
    ]);
  });
});
