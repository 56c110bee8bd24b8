import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GraphQLError } from 'graphql';
import type { Access } from '@stockflow/platform';
import type { Logger } from '@stockflow/observability';
import { sendGraphqlAnswer } from './answer.ts';
import { graphiqlPageAsked } from './graphiql.ts';
import { MAX_REQUEST_BODY_BYTES, notJsonRefusal, readLimitedBody, refuseTooLargeBody } from './request-body.ts';

/** The response header that marks an answer given with authentication off, to anyone: `disabled`. */
export const AUTH_NOTICE_HEADER = 'x-stockflow-auth';

let credentialsIgnoredWarned = false;

/**
 * With authentication off, nothing checks a token: `Bearer garbage` is served as an admin token
 * is, and a customer's token reads every customer's orders. So each answer says so in a header,
 * and the first request in the process that brings credentials is logged as a warning (once, not
 * per request: a client sending them would flood the log).
 */
function noticeOpenAccess(req: IncomingMessage, res: ServerResponse, logger: Logger): void {
  res.setHeader(AUTH_NOTICE_HEADER, 'disabled');
  if (credentialsIgnoredWarned || req.headers.authorization === undefined) return;
  credentialsIgnoredWarned = true;
  logger.warn(
    'a request brought credentials (Authorization) but authentication is off: they were not checked and the request had full access; set AUTH_JWT_SECRET (or AUTH_JWKS_URL) to check tokens',
  );
}

/** What a GraphQL request brings once admitted: who asks (not asked of the GraphiQL page), and its body (none for GET or HEAD). */
export interface AdmittedRequest {
  access: Access | undefined;
  body: Buffer | undefined;
}

/**
 * What a GraphQL request passes before anything reads its operation, at a service or at the
 * gateway, in this order: CORS (a preflight is answered here), the declared size (413), the token
 * (401 UNAUTHENTICATED, with the error as `maskError` words it; the GraphiQL page needs none; with
 * authentication off, the answer is marked and credentials warned of: noticeOpenAccess), the
 * body read within MAX_REQUEST_BODY_BYTES (413), and JSON for a POST (415). Resolves with what it
 * admitted, or undefined once it has answered the request itself.
 */
export async function admitGraphqlRequest(
  req: IncomingMessage,
  res: ServerResponse,
  options: {
    cors: (req: IncomingMessage, res: ServerResponse) => boolean;
    graphiql: boolean;
    authenticate: (authorization: string | undefined) => Promise<Access>;
    mask: (error: unknown) => Error;
    logger: Logger;
  },
): Promise<AdmittedRequest | undefined> {
  if (options.cors(req, res)) return undefined;
  // A declared size over the limit is refused before anything else; a body sent without one
  // (chunked) is counted as it comes (readLimitedBody).
  if (Number(req.headers['content-length'] ?? 0) > MAX_REQUEST_BODY_BYTES) return void refuseTooLargeBody(req, res);
  let access: Access | undefined;
  if (!graphiqlPageAsked(req, options.graphiql)) {
    try {
      access = await options.authenticate(req.headers.authorization);
    } catch (error) {
      const masked = options.mask(error) as GraphQLError;
      return void sendGraphqlAnswer(res, 401, { errors: [masked.toJSON()] }, { 'www-authenticate': 'Bearer' });
    }
    if (access.open) noticeOpenAccess(req, res, options.logger);
  }
  const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : await readLimitedBody(req);
  if (body === null) return void refuseTooLargeBody(req, res);
  const refusal = notJsonRefusal(req);
  if (refusal) return void sendGraphqlAnswer(res, refusal.status, refusal.body);
  return { access, body };
}
