import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendGraphqlAnswer } from '@stockflow/graphql';
import { TRACEPARENT_HEADER, type Logger } from '@stockflow/observability';
import { DRAINING_HEADER } from '@stockflow/platform';
import { Pool, type Dispatcher } from 'undici';
import { failureError, failureLog, failureOfError, failureOfStatus, type ServiceFailure } from './failures.ts';
import type { gatewayObservability } from './observability.ts';

/** The answer's headers a client gets from the service, as it sent them; the gateway sets the rest (CORS, the auth notice). */
const PASSED_BACK = new Set(['content-type', 'content-length', 'retry-after', 'www-authenticate']);
/** How the services begin an answer with errors (sendGraphqlAnswer writes them first). */
const ERRORS_FIRST = Buffer.from('{"errors"');

/** Answers a request `subgraph` failed (failures.ts) with `status`, and logs it: the service's failure, not the client's. */
function answerFailure(
  res: ServerResponse,
  logger: Logger,
  subgraph: string,
  failure: ServiceFailure,
  status: number,
  headers: Record<string, string>,
  err?: Error,
): void {
  logger.warn({ subgraph, status, err }, failureLog(failure));
  sendGraphqlAnswer(res, status, { errors: [failureError(failure, subgraph)] }, headers);
}

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
 * A service that failed (failures.ts) is answered as the runtime's path answers it: 502 when there
 * was no answer, else the status that stood for it (the service's draining 503, a proxy's or a
 * load balancer's 502-504) with its Retry-After, none of its body; logged as a warning. A client that
 * leaves ends the request to the service too.
 */
export function subgraphForwarder(urls: Record<string, string>, observe: ReturnType<typeof gatewayObservability>, logger: Logger) {
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
            erred = statusCode >= 400;
            const passed: Record<string, string> = {};
            let draining = false;
            for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
              const name = String(rawHeaders[i]).toLowerCase();
              if (PASSED_BACK.has(name)) passed[name] = String(rawHeaders[i + 1]);
              else if (name === DRAINING_HEADER) draining = true;
            }
            call.answered(statusCode, draining);
            const failure = failureOfStatus(statusCode, draining);
            if (failure) {
              // Answered at once, without waiting for (or reading) a body that is not the service's.
              answerFailure(
                res,
                logger,
                subgraph,
                failure,
                statusCode,
                passed['retry-after'] ? { 'retry-after': passed['retry-after'] } : {},
              );
              settle(true);
              abort?.();
              return false;
            }
            res.writeHead(statusCode, passed);
            return true;
          },
          onData(chunk) {
            if (settled) return false;
            if (first && !erred) erred = chunk.subarray(0, ERRORS_FIRST.length).equals(ERRORS_FIRST);
            first = false;
            if (res.write(chunk)) return true;
            // Paused until the client has taken what it was sent.
            res.once('drain', () => resume?.());
            return false;
          },
          onComplete() {
            res.end();
            settle(erred);
          },
          onError(error) {
            if (settled) return;
            if (status !== 0 || res.headersSent) {
              res.destroy();
              return settle(true);
            }
            const failure = failureOfError(error);
            call.failed(failure, error);
            answerFailure(res, logger, subgraph, failure, 502, {}, error);
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
