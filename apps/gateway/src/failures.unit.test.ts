import { GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { connectionLost, failureOfError, failureOfStatus } from './failures.ts';

/** An error with a Node-style string code, as node:net and undici make them. */
const coded = (message: string, code: string) => Object.assign(new Error(message), { code });
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

  it('given a connection refused (even among the addresses of one name), calls the service unreachable; a dropped one, unknown', () => {
    const refused = new TypeError('fetch failed', {
      cause: new AggregateError([
        coded('connect ECONNREFUSED ::1:1', 'ECONNREFUSED'),
        coded('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED'),
      ]),
    });
    expect(failureOfError(wrapped(refused))).toBe('unreachable');
    expect(failureOfError(coded('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED'))).toBe('unreachable');
    expect(failureOfError(coded('other side closed', 'UND_ERR_SOCKET'))).toBe('unknown');
    expect(failureOfError(new Error('no code at all'))).toBe('unknown');
  });

  it("given a status, tells a draining instance's 503 (unreachable) from a load balancer's 502 and 504 (unknown), and passes the rest", () => {
    expect([503, 502, 504, 500, 200].map(failureOfStatus)).toEqual(['unreachable', 'unknown', 'unknown', undefined, undefined]);
  });
});
