import type { IncomingMessage } from 'node:http';
import type { GraphiQLOptions } from 'graphql-yoga';

/**
 * The GraphiQL page with its scripts, styles and editor workers in it (@graphql-yoga/render-graphiql),
 * for a service's pipeline and the gateway's Yoga-based runtime: Yoga's own page loads them from
 * unpkg.com and, offline or behind a proxy that blocks it, never gets past "Loading". The page is
 * about 9 MB, so the module is loaded at the first page asked for, never in a process with
 * GraphiQL off.
 */
export const renderGraphiQL = async (options: GraphiQLOptions): Promise<string> =>
  (await import('@graphql-yoga/render-graphiql')).renderGraphiQL(options);

/**
 * Whether the request asks for the GraphiQL page, which needs no token: then it is answered with
 * the page and nothing else (a service's pipeline and the gateway alike), so that no operation
 * runs unauthenticated.
 */
export function graphiqlPageAsked(req: IncomingMessage, graphiql: boolean): boolean {
  return graphiql && req.method === 'GET' && (req.headers.accept ?? '').includes('text/html');
}
