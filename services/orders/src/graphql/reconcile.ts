import { MAX_ITEMS_EXTENSION, type StockflowSchemaTypes } from '@stockflow/graphql';
import { requirePermission, ValidationError } from '@stockflow/platform';
import type { Reconciliation } from '../application/republish-pending.ts';
import type { OrdersContext } from './schema.ts';

/** How many orders one reconcilePendingOrders call sends again: by default, and at most. */
const RECONCILE_LIMIT = { default: 200, max: 1_000 } as const;

/** The operator's way to send again the orders whose event or answer was lost (npm run reconcile). */
export function addReconcile(builder: PothosSchemaTypes.SchemaBuilder<StockflowSchemaTypes<OrdersContext>>): void {
  const ReconcileResultRef = builder.objectRef<Reconciliation>('ReconcileResult').implement({
    description: 'What one reconcilePendingOrders call sent again, and what is left.',
    fields: (t) => ({
      republished: t.int({ description: 'How many OrderCreated events were sent again.', resolve: (r) => r.ids.length }),
      orderIds: t.idList({
        description: 'The orders concerned, oldest first.',
        extensions: { [MAX_ITEMS_EXTENSION]: RECONCILE_LIMIT.max },
        resolve: (r) => r.ids,
      }),
      remaining: t.int({
        description: 'Orders still due by the same threshold: call again (at a pace the Inventory Service can take) until 0.',
        resolve: (r) => r.remaining,
      }),
      olderThanSeconds: t.int({
        description:
          'The threshold applied: olderThanSeconds as asked, or processingLagSeconds (rounded up) when that is longer, so that orders merely waiting in a slow queue are not sent again.',
        resolve: (r) => r.olderThanSeconds,
      }),
      processingLagSeconds: t.float({
        description:
          "How long the Inventory Service's latest answers took, from the order's creation (the longest of the last minute's latest 1000; 0 when none came).",
        resolve: (r) => r.lagSeconds,
      }),
    }),
  });

  builder.mutationField('reconcilePendingOrders', (t) =>
    t.field({
      type: ReconcileResultRef,
      description: `Sends again the OrderCreated of up to limit orders PENDING for longer than olderThanSeconds (default 300), oldest first, for orders whose event or answer was lost or parked; remaining says how many are left (npm run reconcile calls again at a set pace until none is). The threshold is raised to the current processing lag when that is longer: a younger order is only waiting its turn. Inventory answers a repeat with its first decision, so nothing is reserved twice; safe at any time, on any instance (admins only).`,
      args: {
        olderThanSeconds: t.arg.int(),
        limit: t.arg.int({ description: `How many at most, default ${RECONCILE_LIMIT.default}, at most ${RECONCILE_LIMIT.max}.` }),
      },
      resolve: async (_root, args, ctx) => {
        requirePermission(ctx.access, 'operate', 'reconcile orders');
        const olderThan = args.olderThanSeconds ?? 300;
        if (olderThan < 0 || olderThan > 30 * 86_400) {
          throw new ValidationError('olderThanSeconds must be between 0 and 2592000 (30 days)', { field: 'olderThanSeconds' });
        }
        const limit = args.limit ?? RECONCILE_LIMIT.default;
        if (limit < 1 || limit > RECONCILE_LIMIT.max) {
          throw new ValidationError(`limit must be between 1 and ${RECONCILE_LIMIT.max}`, { field: 'limit' });
        }
        return ctx.commands.republishPending(olderThan, limit);
      },
    }),
  );
}
