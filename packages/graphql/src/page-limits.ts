/**
 * The most a page or an id list may hold, and a page's size when none is asked: what the
 * connections enforce (connection.ts) and what the cost counts a list as (cost.ts), in a module of
 * its own so that neither has to import the other.
 */
export const PAGE_LIMITS = { maxIdsPerQuery: 500, maxPageSize: 500, defaultPageSize: 50 } as const;
