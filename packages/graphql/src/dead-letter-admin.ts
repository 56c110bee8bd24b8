import type { QueueSpec } from '@stockflow/contracts';
import { requirePermission, ValidationError, type Access } from '@stockflow/platform';
import type { DeadLetter, ParkedPayment, Transport } from '@stockflow/messaging';
import type { StockflowSchemaTypes } from './connection.ts';
import { SHAREABLE, SHAREABLE_INACCESSIBLE } from './federation.ts';

export interface DeadLetterAdminContext {
  /** Who asks: only a request that may operate the platform (an admin) may see or replay parked messages. */
  access: Access;
  transport: Transport;
  /** The queues this service consumes; their DLQs are the ones it may inspect and replay. */
  consumerQueues: QueueSpec[];
}

const MAX_LISTED = 500;

/**
 * Adds `deadLetters(queue, first)` and `replayDeadLetters(queue, ids, all)` to a service's schema,
 * for the queues that service consumes, and the same under the service's name for the one graph
 * (`inventoryDeadLetters`, `replayInventoryDeadLetters`; `ordersDeadLetters`, ...); admins only.
 */
export function addDeadLetterAdmin<Context extends DeadLetterAdminContext>(
  builder: PothosSchemaTypes.SchemaBuilder<StockflowSchemaTypes<Context>>,
  service: 'orders' | 'inventory',
) {
  const ParkedPaymentRef = builder.objectRef<ParkedPayment>('ParkedPayment').implement({
    description:
      'A payment event a consumer could not apply, as far as its body can be read (null where it cannot). When it took money, that money is held by the payment service with no record here and no refund asked: give it back through the payment provider, or fix the cause and replay the message.',
    ...SHAREABLE,
    fields: (t) => ({
      event: t.string({ nullable: true, description: 'PaymentSucceeded or PaymentFailed.', resolve: (p) => p.event }),
      paymentId: t.string({ nullable: true, resolve: (p) => p.paymentId }),
      orderId: t.string({ nullable: true, resolve: (p) => p.orderId }),
      amountCents: t.int({ nullable: true, resolve: (p) => p.amountCents }),
      currency: t.string({ nullable: true, resolve: (p) => p.currency }),
      moneyTaken: t.boolean({
        nullable: true,
        description:
          'True: the payment service took this money (PaymentSucceeded). False: a failed attempt, none taken. Null: the body cannot tell; treat it as money taken until the payment service says otherwise.',
        resolve: (p) => p.moneyTaken,
      }),
    }),
  });

  const DeadLetterRef = builder.objectRef<DeadLetter>('DeadLetter').implement({
    description: "A message a consumer gave up on, parked in its queue's dead-letter queue.",
    ...SHAREABLE,
    fields: (t) => ({
      id: t.id({
        resolve: (d) => d.id,
        description:
          'The message id; pass it to replayDeadLetters (through the gateway: replayInventoryDeadLetters, replayOrdersDeadLetters).',
      }),
      queue: t.string({ resolve: (d) => d.queue }),
      reason: t.string({ resolve: (d) => d.reason }),
      routingKey: t.string({ resolve: (d) => d.routingKey }),
      body: t.string({ resolve: (d) => d.body }),
      payment: t.field({
        type: ParkedPaymentRef,
        nullable: true,
        description:
          'For a message parked from a queue of payment events (payment.orders): the money it may stand for. Null for other queues.',
        resolve: (d) => d.payment ?? null,
      }),
    }),
  });

  const queueOf = (ctx: Context, name: string): QueueSpec => {
    const spec = ctx.consumerQueues.find((q) => q.queue === name);
    if (!spec) {
      throw new ValidationError(`queue must be one of ${ctx.consumerQueues.map((q) => q.queue).join(', ')}`, { field: 'queue' });
    }
    return spec;
  };

  const list = (_root: unknown, args: { queue: string; first?: number | null }, ctx: Context) => {
    requirePermission(ctx.access, 'operate', 'see parked messages');
    const first = args.first ?? 50;
    if (first < 1 || first > MAX_LISTED) throw new ValidationError(`first must be between 1 and ${MAX_LISTED}`, { field: 'first' });
    return ctx.transport.deadLetters.list(queueOf(ctx, args.queue), first);
  };
  const replay = (_root: unknown, args: { queue: string; ids?: (string | number)[] | null; all?: boolean | null }, ctx: Context) => {
    requirePermission(ctx.access, 'operate', 'replay parked messages');
    if (!args.all && (!args.ids || args.ids.length === 0)) throw new ValidationError('give ids, or all: true', { field: 'ids' });
    return ctx.transport.deadLetters.replay(queueOf(ctx, args.queue), args.all ? 'all' : (args.ids ?? []).map(String));
  };

  // `deadLetters` and `replayDeadLetters` are each service's own names, on its own endpoint; both
  // services have them, and the gateway cannot tell which service a queue belongs to, so they stay
  // out of the one graph. There, each service answers for its queues under its own name.
  const graphNames = {
    list: `${service}DeadLetters`,
    replay: `replay${service[0]!.toUpperCase()}${service.slice(1)}DeadLetters`,
  };
  for (const [listName, replayName, directives] of [
    ['deadLetters', 'replayDeadLetters', SHAREABLE_INACCESSIBLE],
    [graphNames.list, graphNames.replay, {}],
  ] as const) {
    builder.queryField(listName, (t) =>
      t.field({
        type: [DeadLetterRef],
        description: `Parked messages of one of the ${service} service's queues, oldest first (at most ${MAX_LISTED}).`,
        ...directives,
        args: { queue: t.arg.string({ required: true }), first: t.arg.int() },
        resolve: list,
      }),
    );
    builder.mutationField(replayName, (t) =>
      t.field({
        type: 'Int',
        description: `Sends parked messages of one of the ${service} service's queues back to it (once their cause is fixed). Returns how many.`,
        ...directives,
        args: { queue: t.arg.string({ required: true }), ids: t.arg.idList(), all: t.arg.boolean() },
        resolve: replay,
      }),
    );
  }
}
