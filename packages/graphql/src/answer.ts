import type { ServerResponse } from 'node:http';

/** A GraphQL answer (or refusal) as JSON, whole: the services' and the gateway's. */
export function sendGraphqlAnswer(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json), ...headers });
  res.end(json);
}

/** The answer to a request that failed unexpectedly (already logged): 500 without details, or a cut connection once the answer has begun. */
export function answerUnexpectedFailure(res: ServerResponse): void {
  if (!res.headersSent)
    sendGraphqlAnswer(res, 500, { errors: [{ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
  else res.destroy();
}
