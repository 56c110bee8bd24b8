import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendGraphqlAnswer } from './answer.ts';

/** Most bytes a GraphQL request body may have. */
export const MAX_REQUEST_BODY_BYTES = 1_000_000;

/** 413, then the connection is dropped rather than the rest of an oversized body read (the services and the gateway). */
export function refuseTooLargeBody(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('connection', 'close');
  res.once('finish', () => req.destroy());
  sendGraphqlAnswer(res, 413, {
    errors: [{ message: `Request body is larger than ${MAX_REQUEST_BODY_BYTES} bytes.`, extensions: { code: 'BAD_REQUEST' } }],
  });
}

/** The body, counted as it comes in (chunked too); null once it passes MAX_REQUEST_BODY_BYTES. */
export async function readLimitedBody(req: IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_REQUEST_BODY_BYTES) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Whether a body is JSON: no HTML form can send one, so a JSON POST came from a script (CORS applies to it). */
export const isJsonContentType = (contentType: string | undefined) =>
  contentType?.split(';')[0]?.trim().toLowerCase() === 'application/json';

/**
 * The answer (415) to a POST whose body is not application/json, else undefined: a web page of
 * another site can send a form or plain text without a CORS preflight, never JSON.
 */
export function notJsonRefusal(
  req: IncomingMessage,
): { status: 415; body: { errors: { message: string; extensions: { code: string } }[] } } | undefined {
  const type = req.headers['content-type'];
  if (req.method !== 'POST' || isJsonContentType(type)) return undefined;
  return {
    status: 415,
    body: {
      errors: [
        {
          message: `A POST body must be application/json${type ? ` (this one is ${type})` : ''}: operations are not taken from forms or plain text, which any web page can send.`,
          extensions: { code: 'BAD_REQUEST' },
        },
      ],
    },
  };
}
