import SchemaBuilder from '@pothos/core';
import { createPubSub, filter, pipe } from 'graphql-yoga';
import {
  addDeadLetterAdmin,
  type DeadLetterAdminContext,
  afterPosition,
  connectionType,
  DateTimeScalar,
  ForbiddenError,
  MAX_ITEMS_EXTENSION,
  NotFoundError,
  ownCustomer,
  PAGE_LIMITS,
  pageSize,
  requireAdmin,
  ValidationError,
  type StockflowSchemaTypes,
  type TraceContext,
} from '@stockflow/platform';
import type { OrdersRepository, StatusChange } from '../db/orders.ts';
import { ORDER_LIMITS, ORDER_STATUSES, validCustomerId, validNewOrder, validOrderId, validReason, type Order } from '../domain/order.ts';

const MAX_RECONCILED_LISTED = 1_000;

export const createStatusPubSub = () => createPubSub<{ statusChanged: [StatusChange] }>();
export type StatusPubSub = ReturnType<typeof createStatusPubSub>;

export interface OrdersContext extends DeadLetterAdminContext {
  orders: OrdersRepository;
  pubsub: StatusPubSub;
  /** The trace the request belongs to (its traceparent header); the events it causes continue it. */
  trace: TraceContext | undefined;
  /** Limits how fast one customer may create orders (admins are not limited). */
  createOrderLimiter: { take(client: string): void } | undefined;
}

/** A customer acts only for itself; an admin (or open access) for anyone. */
const mayActFor = (ctx: OrdersContext, customerId: string, action: string) => {
  const own = ownCustomer(ctx.access);
  if (own !== undefined && own !== customerId) throw new ForbiddenError(`a customer may only ${action} its own orders`);
};

/** The order if the request may see it: a customer sees only its own, and another's as no order at all. */
const visible = (ctx: OrdersContext, order: Order | undefined): Order | undefined => {
  const own = ownCustomer(ctx.access);
  return order && (own === undefined || order.customerId === own) ? order : undefined;
};

const builder = new SchemaBuilder<StockflowSchemaTypes<OrdersContext>>({ defaultFieldNullability: false });
builder.addScalarType('DateTime', DateTimeScalar);

const OrderStatusEnum = builder.enumType('OrderStatus', {
  values: {
    PENDING: { description: 'Accepted; waiting for the Inventory Service.' },
    CONFIRMED: { description: 'Every line is reserved.' },
    CANCELLED: { description: 'Rejected by inventory, or cancelled; nothing is held. See reason.' },
    FULFILLED: { description: 'Shipped; the reserved units are sold.' },
  } as const,
});

const OrderLineRef = builder.objectRef<{ product_id: number; quantity: number }>('OrderLine').implement({
  fields: (t) => ({
    productId: t.id({ resolve: (l) => l.product_id }),
    quantity: t.exposeInt('quantity'),
  }),
});

const OrderRef = builder.objectRef<Order>('Order').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    customerId: t.exposeID('customerId'),
    status: t.field({ type: OrderStatusEnum, resolve: (o) => o.status }),
    reason: t.exposeString('reason', { nullable: true, description: 'Why the order was cancelled.' }),
    items: t.field({ type: [OrderLineRef], extensions: { [MAX_ITEMS_EXTENSION]: ORDER_LIMITS.maxLines }, resolve: (o) => o.items }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'When the status last changed.' }),
  }),
});

const OrderConnection = connectionType(builder, 'Order', OrderRef, (o) => o.seq);

const OrderLineInput = builder.inputType('OrderLineInput', {
  fields: (t) => ({ productId: t.id({ required: true }), quantity: t.int({ required: true }) }),
});

const CreateOrderInput = builder.inputType('CreateOrderInput', {
  fields: (t) => ({
    customerId: t.id({ required: true }),
    items: t.field({ type: [OrderLineInput], required: true }),
    idempotencyKey: t.string({ description: 'A retried request with the same key returns the same order.' }),
  }),
});

const mustExist = (order: Order | undefined, id: string): Order => {
  if (!order) throw new ValidationError(`order ${id} does not exist`, { field: 'id' });
  return order;
};

const StatusCountRef = builder.objectRef<{ status: Order['status']; count: number }>('OrderStatusCount').implement({
  fields: (t) => ({
    status: t.field({ type: OrderStatusEnum, resolve: (c) => c.status }),
    count: t.exposeInt('count'),
  }),
});

const MAX_RECENT = 100;

builder.queryType({
  fields: (t) => ({
    recentOrders: t.field({
      type: [OrderRef],
      description: `The newest orders first (a customer sees its own), at most ${MAX_RECENT}.`,
      args: { first: t.arg.int({ description: 'How many, default 20.' }) },
      resolve: (_root, args, ctx) => {
        const first = args.first ?? 20;
        if (first < 1 || first > MAX_RECENT) throw new ValidationError(`first must be between 1 and ${MAX_RECENT}`, { field: 'first' });
        return ctx.orders.recent(ownCustomer(ctx.access), first);
      },
    }),
    orderCounts: t.field({
      type: [StatusCountRef],
      description: 'How many orders are in each status (a customer counts its own); every status is listed, zero included.',
      extensions: { [MAX_ITEMS_EXTENSION]: ORDER_STATUSES.length },
      resolve: async (_root, _args, ctx) => {
        const counts = new Map((await ctx.orders.countsByStatus(ownCustomer(ctx.access))).map((c) => [c.status, c.count]));
        return ORDER_STATUSES.map((status) => ({ status, count: counts.get(status) ?? 0 }));
      },
    }),
    order: t.field({
      type: OrderRef,
      nullable: true,
      args: { id: t.arg.id({ required: true }) },
      resolve: async (_root, args, ctx) => visible(ctx, await ctx.orders.byId(validOrderId(args.id))) ?? null,
    }),
    orders: t.field({
      type: OrderConnection,
      description: 'Orders, oldest first. All filters combine.',
      args: {
        ids: t.arg.idList({ description: `At most ${PAGE_LIMITS.maxIdsPerQuery}.` }),
        status: t.arg({ type: OrderStatusEnum }),
        customerId: t.arg.id(),
        first: t.arg.int({ description: `Page size, default ${PAGE_LIMITS.defaultPageSize}, at most ${PAGE_LIMITS.maxPageSize}.` }),
        after: t.arg.string(),
      },
      resolve: (_root, args, ctx) => {
        if (args.ids && args.ids.length > PAGE_LIMITS.maxIdsPerQuery) {
          throw new ValidationError(`ids accepts at most ${PAGE_LIMITS.maxIdsPerQuery} ids`, { field: 'ids' });
        }
        const customerId = args.customerId ? validCustomerId(String(args.customerId)) : undefined;
        if (customerId) mayActFor(ctx, customerId, 'list');
        return ctx.orders.list(
          {
            ids: args.ids?.map((id) => validOrderId(String(id), 'ids')),
            status: args.status ?? undefined,
            customerId: customerId ?? ownCustomer(ctx.access),
          },
          { after: afterPosition(args.after), limit: pageSize(args.first) },
        );
      },
    }),
  }),
});

builder.mutationType({
  fields: (t) => ({
    createOrder: t.field({
      type: OrderRef,
      description: 'Stores the order as PENDING and returns at once; inventory decides asynchronously.',
      args: { input: t.arg({ type: CreateOrderInput, required: true }) },
      resolve: (_root, { input }, ctx) => {
        const order = validNewOrder({
          customerId: String(input.customerId),
          items: input.items.map((l) => ({ productId: String(l.productId), quantity: l.quantity })),
          idempotencyKey: input.idempotencyKey,
        });
        mayActFor(ctx, order.customerId, 'create');
        const own = ownCustomer(ctx.access);
        if (own !== undefined) ctx.createOrderLimiter?.take(own);
        return ctx.orders.create(order, ctx.trace);
      },
    }),
    cancelOrder: t.field({
      type: OrderRef,
      description: 'PENDING or CONFIRMED to CANCELLED; whatever stock is held for it is released.',
      args: { id: t.arg.id({ required: true }), reason: t.arg.string() },
      resolve: (_root, args, ctx) => ctx.orders.cancel(validOrderId(args.id), validReason(args.reason), ctx.trace, ownCustomer(ctx.access)),
    }),
    fulfillOrder: t.field({
      type: OrderRef,
      description: 'CONFIRMED to FULFILLED (shipped); the reservation becomes a sale.',
      args: { id: t.arg.id({ required: true }) },
      resolve: (_root, args, ctx) => {
        requireAdmin(ctx.access, 'fulfil orders');
        return ctx.orders.fulfil(validOrderId(args.id), ctx.trace);
      },
    }),
  }),
});

const ReconcileResultRef = builder.objectRef<{ ids: string[] }>('ReconcileResult').implement({
  description: 'What reconcilePendingOrders sent again.',
  fields: (t) => ({
    republished: t.int({ description: 'How many OrderCreated events were sent again.', resolve: (r) => r.ids.length }),
    orderIds: t.idList({
      description: `The orders concerned, oldest first (the first ${MAX_RECONCILED_LISTED}).`,
      extensions: { [MAX_ITEMS_EXTENSION]: MAX_RECONCILED_LISTED },
      resolve: (r) => r.ids.slice(0, MAX_RECONCILED_LISTED),
    }),
  }),
});

builder.mutationField('reconcilePendingOrders', (t) =>
  t.field({
    type: ReconcileResultRef,
    description:
      'Sends again the OrderCreated of every order PENDING for longer than olderThanSeconds (default 300), for orders whose event or answer was lost or parked. Inventory answers a repeat with its first decision, so nothing is reserved twice; safe to run at any time, on any instance (admins only).',
    args: { olderThanSeconds: t.arg.int() },
    resolve: async (_root, args, ctx) => {
      requireAdmin(ctx.access, 'reconcile orders');
      const olderThan = args.olderThanSeconds ?? 300;
      if (olderThan < 0 || olderThan > 30 * 86_400) {
        throw new ValidationError('olderThanSeconds must be between 0 and 2592000 (30 days)', { field: 'olderThanSeconds' });
      }
      return { ids: await ctx.orders.republishPending(olderThan) };
    },
  }),
);

builder.subscriptionType({
  fields: (t) => ({
    orderStatusChanges: t.field({
      type: OrderRef,
      description: 'Every order, each time its status changes, new orders included (admins only).',
      subscribe: (_root, _args, ctx) => {
        requireAdmin(ctx.access, 'follow every order');
        return ctx.pubsub.subscribe('statusChanged');
      },
      resolve: async (change: StatusChange, _args, ctx) => mustExist(await ctx.orders.byId(change.id), change.id),
    }),
    orderStatusChanged: t.field({
      type: OrderRef,
      description: 'The order, each time its status changes (on whichever instance processed it).',
      args: { id: t.arg.id({ required: true }) },
      subscribe: async (_root, args, ctx) => {
        const id = validOrderId(args.id);
        if (!visible(ctx, await ctx.orders.byId(id))) throw new NotFoundError(`order ${id} does not exist`, { orderId: id });
        return pipe(
          ctx.pubsub.subscribe('statusChanged'),
          filter((change: StatusChange) => change.id === id),
        );
      },
      resolve: async (change: StatusChange, _args, ctx) => mustExist(await ctx.orders.byId(change.id), change.id),
    }),
    customerOrderStatusChanged: t.field({
      type: OrderRef,
      description: "Every status change of one customer's orders, including new orders (PENDING).",
      args: { customerId: t.arg.id({ required: true }) },
      subscribe: (_root, args, ctx) => {
        const customerId = validCustomerId(String(args.customerId));
        mayActFor(ctx, customerId, 'follow');
        return pipe(
          ctx.pubsub.subscribe('statusChanged'),
          filter((change: StatusChange) => change.customerId === customerId),
        );
      },
      resolve: async (change: StatusChange, _args, ctx) => mustExist(await ctx.orders.byId(change.id), change.id),
    }),
  }),
});

addDeadLetterAdmin(builder);

export const ordersSchema = builder.toSchema({ sortSchema: false });
