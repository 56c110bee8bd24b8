import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { sendGraphqlAnswer, TRACEPARENT_HEADER } from '@stockflow/platform';
import type { gatewayObservability } from './observability.ts';

/** The answer's headers a client gets from the service, as it sent them; the gateway sets the rest (CORS, the auth notice). */
const PASSED_BACK = ['content-type', 'content-length', 'retry-after'] as const;
const ERRORS_FIRST = Buffer.from('{"errors"');

/**
 * Sends a request the gateway has judged (admitted, validated and costed against the public graph,
 * and routed whole to one subgraph) to that service as the client sent it, and streams the
 * service's answer back: the service applies its own rules (token, scope, limits) to the same
 * bytes, so nothing the gateway judged can differ from what the service runs. Connections to each
 * service are kept alive and reused (no limit on sockets: a slow request never queues another).
 *
 * A service that cannot be reached is answered as 502 SUBGRAPH_UNREACHABLE; a client that leaves
 * ends the request to the service too.
 */
export function subgraphForwarder(urls: Record<string, string>, observe: ReturnType<typeof gatewayObservability>) {
  const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  const targets = new Map(
    Object.entries(urls).map(([subgraph, url]) => {
      const target = new URL(url);
      const secure = target.protocol === 'https:';
      return [subgraph, { url, secure, options: { host: target.hostname, port: target.port, path: target.pathname + target.search } }];
    }),
  );

  return {
    /** Resolves once the client has its answer (or has left): whether that answer was an error. */
    forward(subgraph: string, req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<boolean> {
      const target = targets.get(subgraph);
      if (!target) throw new Error(`no URL for subgraph ${subgraph}`);
      const call = observe.call(subgraph, req, {
        method: 'POST',
        url: target.url,
        client: req.headers[TRACEPARENT_HEADER] as string | undefined,
      });
      const headers: Record<string, string | number> = {
        'content-type': 'application/json',
        accept: 'application/json',
        'content-length': body.length,
      };
      if (req.headers.authorization) headers.authorization = req.headers.authorization;
      if (call.traceparent) headers[TRACEPARENT_HEADER] = call.traceparent;
      return new Promise<boolean>((resolve) => {
        let answered = false;
        const upstream = (target.secure ? https : http).request(
          { ...target.options, method: 'POST', headers, agent: target.secure ? agents.https : agents.http },
          (answer) => {
            answered = true;
            const status = answer.statusCode ?? 502;
            call.answered(status);
            const passed: Record<string, string | string[]> = {};
            for (const name of PASSED_BACK) {
              const value = answer.headers[name];
              if (value !== undefined) passed[name] = value;
            }
            res.writeHead(status, passed);
            // The services write a result's errors first (sendGraphqlAnswer): an error status or that start is an error.
            let erred = status >= 400;
            let first = true;
            answer.on('data', (chunk: Buffer) => {
              if (first && !erred) erred = chunk.subarray(0, ERRORS_FIRST.length).equals(ERRORS_FIRST);
              first = false;
              if (!res.write(chunk)) {
                answer.pause();
                res.once('drain', () => answer.resume());
              }
            });
            answer.on('end', () => {
              res.end();
              resolve(erred);
            });
            answer.on('error', () => {
              res.destroy();
              resolve(true);
            });
          },
        );
        // The client left: the service's work for it is given up too.
        const left = () => {
          if (res.writableFinished) return;
          if (!answered) call.cancelled();
          upstream.destroy();
          resolve(false);
        };
        res.once('close', left);
        upstream.on('error', (error) => {
          res.off('close', left);
          if (answered || res.destroyed) return resolve(true);
          call.unreachable(error);
          sendGraphqlAnswer(res, 502, {
            errors: [{ message: `The ${subgraph} service could not be reached.`, extensions: { code: 'SUBGRAPH_UNREACHABLE', subgraph } }],
          });
          resolve(true);
        });
        upstream.end(body);
      });
    },

    /** Closes the kept-alive connections (once the requests under way are answered). */
    close(): void {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}
