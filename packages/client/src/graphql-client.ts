import http from 'node:http';
import https from 'node:https';

/** A minimal GraphQL-over-HTTP client, for tools (load generator, audit) and tests. */
export interface GraphqlResponse<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } & Record<string, unknown> }[];
}

/**
 * Requests go over node:http with keep-alive connections rather than `fetch`: the load generator
 * shares the machine with the platform it measures, and fetch (undici's web streams) spent about
 * 2 ms of CPU per request there, a whole core at 500 orders/s.
 */
export function graphqlClient(url: string, options: { maxSockets?: number; token?: string | undefined } = {}) {
  const target = new URL(url);
  const transport = target.protocol === 'https:' ? https : http;
  const agent = new transport.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 256 });

  const post = (body: string) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = transport.request(
        target,
        {
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/json',
            accept: 'application/json',
            'content-length': Buffer.byteLength(body),
            ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
          res.on('error', reject);
        },
      );
      // The cause keeps the system error code (ECONNREFUSED...) where callers look for it.
      req.on('error', (error) => reject(new Error(`request to ${url} failed: ${error.message}`, { cause: error })));
      req.end(body);
    });

  return {
    async request<T = Record<string, unknown>>(
      query: string,
      variables?: Record<string, unknown>,
    ): Promise<GraphqlResponse<T> & { status: number }> {
      const { status, text } = await post(JSON.stringify({ query, variables }));
      let body: GraphqlResponse<T>;
      try {
        body = JSON.parse(text) as GraphqlResponse<T>;
      } catch {
        body = { errors: [{ message: `HTTP ${status}: ${text.slice(0, 200)}` }] };
      }
      return { ...body, status };
    },
    /** For requests that must succeed: throws with the errors otherwise. */
    async data<T = Record<string, unknown>>(query: string, variables?: Record<string, unknown>): Promise<T> {
      const res = await this.request<T>(query, variables);
      if (res.errors?.length || !res.data) throw new Error(`GraphQL request failed: ${JSON.stringify(res.errors)}`);
      return res.data;
    },
    /** Closes the kept-alive connections. */
    close: () => agent.destroy(),
  };
}

export type GraphqlClient = ReturnType<typeof graphqlClient>;
