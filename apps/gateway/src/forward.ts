import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendGraphqlAnswer } from '@stockflow/graphql';
import { TRACEPARENT_HEADER } from '@stockflow/observability';
import { Pool, type Dispatcher } from 'undici';
import type { gatewayObservability } from './observability.ts';

/** The answer's headers a client gets from the service, as it sent them; the gateway sets the rest (CORS, the auth notice). */
const PASSED_BACK = new Set(['content-type', 'content-length', 'retry-after', 'www-authenticate']);
/**
 * A service's HTTP answers that say it is not there to answer (a draining instance's 503, a load
 * balancer's 502 or 504): their bodies are not GraphQL and may name what stands in front of it.
 */
export const UNAVAILABLE = new Set<unknown>([502, 503, 504]);
/** How the services begin an answer with errors (sendGraphqlAnswer writes them first). */
const ERRORS_FIRST = Buffer.from('{"errors"');

/** The answer for a service that could not be reached (or answered one of UNAVAILABLE), as the runtime's path words it. */
const answerUnreachable = (res: ServerResponse, subgraph: string, status: number, headers: Record<string, string> = {}) =>
  sendGraphqlAnswer(
    res,
    status,
    { errors: [{ message: `The ${subgraph} service could not be reached.`, extensions: { code: 'SUBGRAPH_UNREACHABLE', subgraph } }] },
    headers,
  );

/**
 * Sends a request the gateway has judged (admitted, validated and costed against the public graph,
 * and routed whole to one subgraph) to that service as the client sent it, and streams the
 * service's answer back. The service reads the same bytes and applies its own rules (token,
 * scope, limits); that it runs nothing the public graph would refuse is the route's part
 * (route.ts: only what the service owns, no introspection, no hidden input).
 *
 * Each service is one undici pool of kept-alive connections, with no limit on their number (a
 * slow request or a long subscription elsewhere never queues another). undici rather than
 * node:http's client: measured A/B, interleaved, the gateway's CPU per forwarded request fell from
 * 249-314 to 160-192 us (docs/decisions.md, "The gateway forwards what one service answers whole").
 *
 * A service that cannot be reached is answered 502 SUBGRAPH_UNREACHABLE, and one that answers
 * 502-504 the same with its status (and Retry-After); a client that leaves ends the request to
 * the service too.
 */
export function subgraphForwarder(urls: Record<string, string>, observe: ReturnType<typeof gatewayObservability>) {
  const targets = new Map(
    Object.entries(urls).map(([subgraph, url]) => {
      const target = new URL(url);
      return [subgraph, { url, path: target.pathname + target.search, pool: new Pool(target.origin, { connections: null }) }];
    }),
  );

  return {
    /** Resolves once the client has its answer (or has left): whether that answer was an error. */
    forward(subgraph: string, req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<boolean> {
      const target = targets.get(subgraph);
      if (!target) throw new Error(`no URL for subgraph ${subgraph}`);
      const client = req.headers[TRACEPARENT_HEADER];
      const call = observe.call(subgraph, req, {
        method: 'POST',
        url: target.url,
        client: typeof client === 'string' ? client : undefined,
      });
      // The client's Accept as it came: the service negotiates the answer as it would have directly.
      const headers: Record<string, string> = { 'content-type': 'application/json', accept: req.headers.accept ?? 'application/json' };
      if (req.headers.authorization) headers.authorization = req.headers.authorization;
      if (call.traceparent) headers[TRACEPARENT_HEADER] = call.traceparent;

      // Gone before anything was sent: the service is not asked at all.
      if (res.destroyed) {
        call.cancelled();
        return Promise.resolve(false);
      }
      return new Promise<boolean>((resolve) => {
        let status = 0;
        /** The headers passed back, held while the answer is one of UNAVAILABLE's (whose body is dropped). */
        let unavailable: Record<string, string> | undefined;
        let erred = false;
        let first = true;
        let settled = false;
        let abort: ((reason?: Error) => void) | undefined;
        let resume: (() => void) | undefined;
        const settle = (error: boolean) => {
          if (settled) return;
          settled = true;
          res.off('close', left);
          resolve(error);
        };
        // The client left: the service's work for it is given up too.
        function left() {
          if (res.writableFinished || settled) return;
          if (status === 0) call.cancelled();
          settle(false);
          abort?.();
        }
        res.once('close', left);

        const handler: Dispatcher.DispatchHandlers = {
          onConnect(abortRequest) {
            abort = abortRequest;
            // The client left while the connection was being made.
            if (settled) abortRequest();
          },
          onHeaders(statusCode, rawHeaders, resumeReading) {
            if (settled) return false;
            status = statusCode;
            resume = resumeReading;
            call.answered(statusCode);
            erred = statusCode >= 400;
            const passed: Record<string, string> = {};
            for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
              const name = String(rawHeaders[i]).toLowerCase();
              if (PASSED_BACK.has(name)) passed[name] = String(rawHeaders[i + 1]);
            }
            if (UNAVAILABLE.has(statusCode)) {
              unavailable = passed['retry-after'] ? { 'retry-after': passed['retry-after'] } : {};
              return true;
            }
            res.writeHead(statusCode, passed);
            return true;
          },
          onData(chunk) {
            if (settled) return false;
            if (unavailable) return true;
            if (first && !erred) erred = chunk.subarray(0, ERRORS_FIRST.length).equals(ERRORS_FIRST);
            first = false;
            if (res.write(chunk)) return true;
            // Paused until the client has taken what it was sent.
            res.once('drain', () => resume?.());
            return false;
          },
          onComplete() {
            if (unavailable) answerUnreachable(res, subgraph, status, unavailable);
            else res.end();
            settle(erred);
          },
          onError(error) {
            if (settled) return;
            if (unavailable) {
              answerUnreachable(res, subgraph, status, unavailable);
              return settle(true);
            }
            if (status !== 0 || res.headersSent) {
              res.destroy();
              return settle(true);
            }
            call.unreachable(error);
            answerUnreachable(res, subgraph, 502);
            settle(true);
          },
        };
        target.pool.dispatch({ path: target.path, method: 'POST', headers, body }, handler);
      });
    },

    /** Closes the kept-alive connections, once the requests under way are answered. */
    async close(): Promise<void> {
      await Promise.all([...targets.values()].map((t) => t.pool.close()));
    },
  };
}
