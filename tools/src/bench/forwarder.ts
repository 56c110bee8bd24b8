/**
 * The floor any gateway pays on this machine, as step 11 states it: read the body, parse it,
 * verify the token (cached, as the gateway does), forward it over kept-alive connections, stream
 * the answer back. The bench runs it beside the gateway (the `floor` scenario) so that the
 * gateway's share of the direct orders/s is read against what a process that checks nothing else
 * keeps in the same run.
 *
 * A measuring instrument, never a gateway: it validates no document and applies no limit. It
 * routes by a word of the query (an operation naming orders or payments to the Order Service,
 * anything else to the Inventory Service), which is enough for what the load generator sends.
 * Its upstream client is undici's dispatch, the cheapest one measured here (docs/decisions.md,
 * "The gateway forwards what one service answers whole").
 *
 *   PORT=0 ORDERS_URL=... INVENTORY_URL=... AUTH_JWT_SECRET=... node --import tsx tools/src/bench/forwarder.ts
 */
import { createServer } from 'node:http';
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
const upstream = (url: string) => ({ pool: new Pool(new URL(url).origin, { connections: null }), path: new URL(url).pathname });
const orders = upstream(config.ORDERS_URL);
const inventory = upstream(config.INVENTORY_URL);
const ORDER_WORDS = /order|payment/i;

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    void (async () => {
      const { query } = JSON.parse(body.toString('utf8')) as { query: string };
      await auth.authenticate(req.headers.authorization);
      const target = ORDER_WORDS.test(query) ? orders : inventory;
      const headers: Record<string, string> = { 'content-type': 'application/json', accept: req.headers.accept ?? 'application/json' };
      if (req.headers.authorization) headers.authorization = req.headers.authorization;
      let resume: (() => void) | undefined;
      target.pool.dispatch(
        { path: target.path, method: 'POST', headers, body },
        {
          onConnect() {},
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
            if (!res.headersSent) res.writeHead(502);
            res.end();
          },
        },
      );
    })().catch((error: unknown) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ message: String(error) }] }));
    });
  });
});

server.listen(config.PORT, '127.0.0.1', () => {
  const address = server.address();
  // The line startProcess waits for.
  console.log(JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0, msg: 'forwarder listening' }));
});
process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void Promise.all([orders.pool.close(), inventory.pool.close()]).then(() => process.exit(0));
});
