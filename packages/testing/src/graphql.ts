export interface GraphqlResponse<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } & Record<string, unknown> }[];
}

/** A minimal GraphQL-over-HTTP client: what any shop front end would send. */
export function graphqlClient(url: string) {
  return {
    async request<T = Record<string, unknown>>(
      query: string,
      variables?: Record<string, unknown>,
    ): Promise<GraphqlResponse<T> & { status: number }> {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await res.json()) as GraphqlResponse<T>;
      return { ...body, status: res.status };
    },
    /** For requests that must succeed: throws with the errors otherwise. */
    async data<T = Record<string, unknown>>(query: string, variables?: Record<string, unknown>): Promise<T> {
      const res = await this.request<T>(query, variables);
      if (res.errors?.length || !res.data) throw new Error(`GraphQL request failed: ${JSON.stringify(res.errors)}`);
      return res.data;
    },
  };
}

export type GraphqlClient = ReturnType<typeof graphqlClient>;

export async function eventually<T>(fn: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 15_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await fn();
  while (!accept(last)) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
    last = await fn();
  }
  return last;
}
