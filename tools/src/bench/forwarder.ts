/**
 * A minimal Node forwarder, the floor under the gateway on this machine, as step 11 states it: read
 * the body, parse it, verify the token (with the same cached verification as the gateway and the
 * services), forward it over kept-alive undici connections, stream the answer back. The bench runs
 * it beside the gateway (the `floor` scenario), so that the gateway's share of the direct orders/s
 * is read against what a process that checks nothing else keeps in the same run.
 *
 * A measuring instrument, never a gateway: it validates no document and applies no limit. It
 * routes by a word of the query (an operation naming orders or payments to the Order Service,
 * anything else to the Inventory Service), which is enough for what the load generator sends.
 * Its upstream client is undici's dispatch, as the gateway's is (the cheaper one measured there:
 * docs/decisions.md, "The gateway forwards what one service answers whole").
 *
 *   PORT=0 ORDERS_URL=... INVENTORY_URL=... AUTH_JWT_SECRET=... node --import tsx tools/src/bench/forwarder.ts
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { sendGraphqlAnswer } from '@stockflow/graphql';
import { createAuthenticator, loadConfig, serviceConfigShape } from '@stockflow/platform';
import { Pool } from 'undici';
import { z } from 'zod';

const config = loadConfig(
  z.object({
    PORT: z.coerce.number().int().min(0).max(65_535),
    ORDERS_URL: z.url(),
    INVENTORY_URL: z.url(),
    AUTH_JWT_SECRET: serviceConfigShape.AUTH_JWT_SECRET,
  }),
  process.env,
);
const auth = createAuthenticator({ ...config, AUTH_DISABLED: 'false' });
const upstream = (url: string) => {
  const target = new URL(url);
  return { pool: new Pool(target.origin, { connections: null }), path: target.pathname + target.search };
};
const orders = upstream(config.ORDERS_URL);
const inventory = upstream(config.INVENTORY_URL);
const ORDER_WORDS = /order|payment/i;

const refuse = (res: ServerResponse, status: number, message: string) => sendGraphqlAnswer(res, status, { errors: [{ message }] });

function forward(target: ReturnType<typeof upstream>, req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: req.headers.accept ?? 'application/json' };
  if (req.headers.authorization) headers.authorization = req.headers.authorization;
  let abort: (() => void) | undefined;
  let resume: (() => void) | undefined;
  // A client that leaves ends the request to the service too (else a paused answer would hold its connection).
  res.once('close', () => {
    if (!res.writableFinished) abort?.();
  });
  target.pool.dispatch(
    { path: target.path, method: 'POST', headers, body },
    {
      onConnect(abortRequest) {
        abort = abortRequest;
        if (res.destroyed) abortRequest();
      },
      onHeaders(status, raw, resumeReading) {
        resume = resumeReading;
        const passed: Record<string, string> = {};
        for (let i = 0; i + 1 < raw.length; i += 2) {
          const name = String(raw[i]).toLowerCase();
          if (name === 'content-type' || name === 'content-length') passed[name] = String(raw[i + 1]);
        }
        res.writeHead(status, passed);
        return true;
      },
      onData(chunk) {
        if (res.write(chunk)) return true;
        res.once('drain', () => resume?.());
        return false;
      },
      onComplete() {
        res.end();
      },
      onError() {
        // Cut short after the answer began: the client must not take what came for all of it.
        if (res.headersSent) res.destroy();
        else refuse(res, 502, 'the service could not be reached');
      },
    },
  );
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    let query: unknown;
    try {
      ({ query } = JSON.parse(body.toString('utf8')) as { query?: unknown });
    } catch {
      return refuse(res, 400, 'the body is not JSON');
    }
    if (typeof query !== 'string') return refuse(res, 400, 'the body has no query');
    auth
      .authenticate(req.headers.authorization)
      .then(
        () => forward(ORDER_WORDS.test(query) ? orders : inventory, req, res, body),
        (error: unknown) => refuse(res, 401, String(error)),
      )
      // A request it could not forward fails alone, never the process (and with it the scenario).
      .catch(() => res.destroy());
  });
});

server.listen(config.PORT, '127.0.0.1', () => {
  const address = server.address();
  // The line startProcess waits for.
  console.log(JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0, msg: 'forwarder listening' }));
});
// An instrument: nothing it holds is worth waiting for.
process.once('SIGTERM', () => process.exit(0));
