export const ROLES = ['pay', 'fail', 'duplicate', 'double', 'late', 'unpaid'] as const;
/** What the simulator does to one confirmed order. */
export type Role = (typeof ROLES)[number];
/** Shares of the orders by role; the rest are left unpaid. */
export type Shares = Record<Exclude<Role, 'unpaid'>, number>;

/**
 * Roles in proportion to the shares from the first order on: each order takes the role furthest
 * behind its share, so a run of 20 orders has exactly the mix asked for, not a random one.
 */
export function roleAssigner(shares: Shares): () => Role {
  const weights: [Role, number][] = [
    ...Object.entries(shares),
    ['unpaid', Math.max(0, 1 - Object.values(shares).reduce((a, b) => a + b, 0))],
  ] as [Role, number][];
  const taken = new Map<Role, number>(ROLES.map((r) => [r, 0]));
  let n = 0;
  return () => {
    n += 1;
    let best: Role = 'unpaid';
    let deficit = -Infinity;
    for (const [role, share] of weights) {
      const behind = share * n - (taken.get(role) ?? 0);
      if (share > 0 && behind > deficit + 1e-9) [best, deficit] = [role, behind];
    }
    taken.set(best, (taken.get(best) ?? 0) + 1);
    return best;
  };
}
