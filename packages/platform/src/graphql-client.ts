/** A minimal GraphQL-over-HTTP client, for tools (load generator, audit) and tests. */
export interface GraphqlResponse<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } & Record<string, unknown> }[];
}

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
