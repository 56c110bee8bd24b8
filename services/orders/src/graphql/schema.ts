import SchemaBuilder from '@pothos/core';
import {
  addDeadLetterAdmin,
  afterPosition,
  connectionType,
  DateTimeScalar,
  MAX_ITEMS_EXTENSION,
  PAGE_LIMITS,
  pageSize,
  subgraphSchema,
  unresolvableEntity,
  type DeadLetterAdminContext,
  type StockflowSchemaTypes,
} from '@stockflow/graphql';
import { customerScope, ForbiddenError, NotFoundError, requirePermission, ValidationError, type Permission } from '@stockflow/platform';
import type { TraceContext } from '@stockflow/observability';
import { MAX_STOCK_LOCATIONS, PaymentSucceeded, type Allocation, type ReservedLine } from '@stockflow/contracts';
import type { OrderCommands } from '../application/commands.ts';
import type { OrderReads } from '../db/orders.ts';
import type { PaymentReads } from '../db/payments.ts';
import type { StatusChange } from '../db/status-changes.ts';
import {
  awaitingStock,
  ORDER_LIMITS,
  ORDER_STATUSES,
  validCustomerId,
  validNewOrder,
  validOrderId,
  validReason,
  type Order,
} from '../domain/order.ts';
import { MAX_PAYMENTS_LISTED, type PAYMENT_OUTCOMES, type Payment } from '../domain/payment.ts';
import { followOrder } from './follow-order.ts';
import { addReconcile } from './reconcile.ts';
import { MAX_PENDING_CHANGES, unlessTooSlow, type StatusFeed, type SubscriberTooSlowError } from './status-feed.ts';

export interface OrdersContext extends DeadLetterAdminContext {
  /** What the queries read. */
  orders: OrderReads & PaymentReads;
  /** What the mutations do: one handler per command. */
  commands: OrderCommands;
  statusFeed: StatusFeed;
  /** The trace the request belongs to (its traceparent header); the events it causes continue it. */
  trace: TraceContext | undefined;
  /** Limits how fast one customer may create orders (admins are not limited). */
  createOrderLimiter: { take(client: string): void } | undefined;
  /** The payments of an order, fetched once per request for every order it lists. */
  paymentsOf: (orderId: string) => Promise<Payment[]>;
}

/** A customer acts only for itself; an admin (or open access) for anyone; a role without the permission for no one. */
const mayActFor = (ctx: OrdersContext, permission: Permission, customerId: string, action: string) => {
  const own = customerScope(ctx.access, permission, `${action} orders`);
  if (own !== undefined && own !== customerId) throw new ForbiddenError(`a customer may only ${action} its own orders`);
};

/**
 * The order if the request may see it with this permission: a customer sees only its own, and
 * another's as no order at all; a role without the permission is refused.
 */
const visible = (ctx: OrdersContext, permission: Permission, action: string, order: Order | undefined): Order | undefined => {
  const own = customerScope(ctx.access, permission, action);
  return order && (own === undefined || order.customerId === own) ? order : undefined;
};

const builder = new SchemaBuilder<StockflowSchemaTypes<OrdersContext>>({ defaultFieldNullability: false });
builder.addScalarType('DateTime', DateTimeScalar);

const OrderStatusEnum = builder.enumType('OrderStatus', {
  values: {
    PENDING: { description: 'Accepted; waiting for the Inventory Service.' },
    CONFIRMED: {
      description: 'Every line is reserved; awaiting payment until paymentDueAt (when payments are on), then CANCELLED if unpaid.',
    },
    PAID: { description: 'Paid in full; the units stay held until the order is fulfilled.' },
    CANCELLED: {
      description: 'Rejected by inventory, cancelled, or not paid in time; nothing is held, money taken is asked back. See reason.',
    },
    FULFILLED: { description: 'Shipped; the reserved units are sold.' },
  } as const,
});

/**
 * A line's product is the Inventory Service's to give: through the gateway, `product` comes from
 * it by the line's productId (its `_entities`), and only it knows whether the product exists. Had
 * this service answered a product reference itself, a product Inventory does not have would have
 * been a Product without a name, an error at the gateway, rather than no product.
 */
const AllocationRef = builder.objectRef<Allocation>('Allocation').implement({
  description: "Units of a line held at one of the Inventory Service's locations.",
  fields: (t) => ({
    locationCode: t.string({ resolve: (a) => a.location_code }),
    quantity: t.exposeInt('quantity'),
  }),
});

const OrderLineRef = builder.objectRef<ReservedLine>('OrderLine').implement({
  ...unresolvableEntity('productId'),
  fields: (t) => ({
    productId: t.id({ resolve: (l) => l.product_id }),
    quantity: t.exposeInt('quantity'),
    unitPriceCents: t.int({
      nullable: true,
      description: "The product's price when it was reserved; null before, and for a product without a price.",
      resolve: (l) => l.unit_price_cents ?? null,
    }),
    backorderedQuantity: t.int({
      description: 'Units promised and not in stock yet: the order cannot be fulfilled until they arrive. 0 before it is reserved.',
      resolve: (l) => l.backordered_quantity ?? 0,
    }),
    allocations: t.field({
      type: [AllocationRef],
      extensions: { [MAX_ITEMS_EXTENSION]: MAX_STOCK_LOCATIONS },
      description: 'Where the units held for the line are; empty before it is reserved.',
      resolve: (l) => l.allocations ?? [],
    }),
  }),
});

const PaymentOutcomeEnum = builder.enumType('PaymentOutcome', {
  values: {
    PAID: { description: 'The money pays the order.' },
    FAILED: { description: 'The attempt failed; no money was taken.' },
    REFUND_REQUESTED: { description: 'Money the order cannot keep (see reason); asked back with RefundRequested.' },
  } satisfies Record<(typeof PAYMENT_OUTCOMES)[number], { description: string }>,
});

const PaymentRef = builder.objectRef<Payment>('Payment').implement({
  description: 'One attempt to pay an order, as the payment service reported it.',
  fields: (t) => ({
    paymentId: t.exposeID('paymentId'),
    orderId: t.exposeID('orderId'),
    amountCents: t.exposeInt('amountCents', { nullable: true, description: 'Null for a failed attempt.' }),
    currency: t.exposeString('currency', { nullable: true }),
    outcome: t.field({ type: PaymentOutcomeEnum, resolve: (p) => p.outcome }),
    reason: t.exposeString('reason', { nullable: true, description: 'Why it failed, or why its money is asked back.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'When the outcome last changed (a paid order cancelled).' }),
  }),
});

const OrderRef = builder.objectRef<Order>('Order').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    customerId: t.exposeID('customerId'),
    status: t.field({ type: OrderStatusEnum, resolve: (o) => o.status }),
    reason: t.exposeString('reason', { nullable: true, description: 'Why the order was cancelled.' }),
    items: t.field({
      type: [OrderLineRef],
      extensions: { [MAX_ITEMS_EXTENSION]: ORDER_LIMITS.maxLines },
      resolve: (o) => o.pricedItems ?? o.items,
    }),
    awaitingStock: t.boolean({
      description: 'Some of its units are backordered: it may be paid, but not fulfilled until they arrive.',
      resolve: (o) => awaitingStock(o),
    }),
    totalCents: t.exposeInt('totalCents', {
      nullable: true,
      description: 'What the customer owes, fixed when stock is reserved; null before, and when a product had no price.',
    }),
    currency: t.exposeString('currency', { nullable: true, description: 'ISO 4217, set when the order is confirmed.' }),
    paymentDueAt: t.expose('paymentDueAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When a CONFIRMED order not paid by then is cancelled; null when payments are off.',
    }),
    paidAt: t.expose('paidAt', { type: 'DateTime', nullable: true }),
    payments: t.field({
      type: [PaymentRef],
      description: `The payment attempts, oldest first, with their outcome (the first ${MAX_PAYMENTS_LISTED}).`,
      extensions: { [MAX_ITEMS_EXTENSION]: MAX_PAYMENTS_LISTED },
      resolve: (o, _args, ctx) => ctx.paymentsOf(o.id),
    }),
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

/** How many of the latest a field lists: `first`, 20 by default, at most MAX_RECENT. */
const latest = (first: number | null | undefined): number => {
  const n = first ?? 20;
  if (n < 1 || n > MAX_RECENT) throw new ValidationError(`first must be between 1 and ${MAX_RECENT}`, { field: 'first' });
  return n;
};

builder.queryType({
  fields: (t) => ({
    recentOrders: t.field({
      type: [OrderRef],
      description: `The newest orders first (a customer sees its own), at most ${MAX_RECENT}.`,
      args: { first: t.arg.int({ description: 'How many, default 20.' }) },
      resolve: (_root, args, ctx) => ctx.orders.recent(customerScope(ctx.access, 'listOrders', 'list orders'), latest(args.first)),
    }),
    orderCounts: t.field({
      type: [StatusCountRef],
      description: 'How many orders are in each status (a customer counts its own); every status is listed, zero included.',
      extensions: { [MAX_ITEMS_EXTENSION]: ORDER_STATUSES.length },
      resolve: async (_root, _args, ctx) => {
        const scope = customerScope(ctx.access, 'listOrders', 'count orders');
        const counts = new Map((await ctx.orders.countsByStatus(scope)).map((c) => [c.status, c.count]));
        return ORDER_STATUSES.map((status) => ({ status, count: counts.get(status) ?? 0 }));
      },
    }),
    refundRequests: t.field({
      type: [PaymentRef],
      description: `Payments whose money is asked back (outcome REFUND_REQUESTED), the latest first (a customer sees its own orders'), at most ${MAX_RECENT}. Each went to the payment service as a RefundRequested.`,
      args: { first: t.arg.int({ description: 'How many, default 20.' }) },
      resolve: (_root, args, ctx) => ctx.orders.refundRequests(customerScope(ctx.access, 'listOrders', 'list refunds'), latest(args.first)),
    }),
    expiredOrderCount: t.int({
      description: 'How many orders were cancelled because they were not paid by their paymentDueAt (a customer counts its own).',
      resolve: (_root, _args, ctx) => ctx.orders.expiredCount(customerScope(ctx.access, 'listOrders', 'count orders')),
    }),
    order: t.field({
      type: OrderRef,
      nullable: true,
      args: { id: t.arg.id({ required: true }) },
      resolve: async (_root, args, ctx) => visible(ctx, 'readOrder', 'read orders', await ctx.orders.byId(validOrderId(args.id))) ?? null,
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
        const own = customerScope(ctx.access, 'listOrders', 'list orders');
        if (args.ids && args.ids.length > PAGE_LIMITS.maxIdsPerQuery) {
          throw new ValidationError(`ids accepts at most ${PAGE_LIMITS.maxIdsPerQuery} ids`, { field: 'ids' });
        }
        const customerId = args.customerId ? validCustomerId(String(args.customerId)) : undefined;
        if (customerId) mayActFor(ctx, 'listOrders', customerId, 'list');
        return ctx.orders.list(
          {
            ids: args.ids?.map((id) => validOrderId(String(id), 'ids')),
            status: args.status ?? undefined,
            customerId: customerId ?? own,
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
        const own = customerScope(ctx.access, 'placeOrders', 'create orders');
        const order = validNewOrder({
          customerId: String(input.customerId),
          items: input.items.map((l) => ({ productId: String(l.productId), quantity: l.quantity })),
          idempotencyKey: input.idempotencyKey,
        });
        mayActFor(ctx, 'placeOrders', order.customerId, 'create');
        if (own !== undefined) ctx.createOrderLimiter?.take(own);
        return ctx.commands.create(order, ctx.trace);
      },
    }),
    cancelOrder: t.field({
      type: OrderRef,
      description: 'PENDING, CONFIRMED or PAID to CANCELLED; whatever stock is held for it is released, and a payment taken is asked back.',
      args: { id: t.arg.id({ required: true }), reason: t.arg.string() },
      resolve: (_root, args, ctx) => {
        const own = customerScope(ctx.access, 'cancelOrders', 'cancel orders');
        return ctx.commands.cancel(validOrderId(args.id), validReason(args.reason), ctx.trace, own);
      },
    }),
    fulfillOrder: t.field({
      type: OrderRef,
      description:
        'PAID (or CONFIRMED, when payments are off) to FULFILLED (shipped); the reservation becomes a sale. A CONFIRMED order awaiting payment is refused with PAYMENT_REQUIRED, an order awaiting backordered stock with AWAITING_STOCK.',
      args: { id: t.arg.id({ required: true }) },
      resolve: (_root, args, ctx) => {
        requirePermission(ctx.access, 'fulfilOrders', 'fulfil orders');
        return ctx.commands.fulfil(validOrderId(args.id), ctx.trace);
      },
    }),
  }),
});

const RecordPaymentInput = builder.inputType('RecordPaymentInput', {
  fields: (t) => ({
    orderId: t.id({ required: true }),
    paymentId: t.id({ required: true, description: "The payment service's id of the payment: a repeat is recorded once." }),
    amountCents: t.int({ required: true }),
    currency: t.string({ required: true, description: 'ISO 4217, e.g. EUR.' }),
  }),
});

builder.mutationField('recordPayment', (t) =>
  t.field({
    type: PaymentRef,
    description:
      'A payment a provider reported over HTTP, judged as a PaymentSucceeded event: it pays a CONFIRMED order whose hold is not over for exactly its total; any other money is asked back (RefundRequested). Idempotent by paymentId: a repeat returns the first record (admins and the payments role).',
    args: { input: t.arg({ type: RecordPaymentInput, required: true }) },
    resolve: (_root, { input }, ctx) => {
      requirePermission(ctx.access, 'recordPayments', 'record payments');
      const parsed = PaymentSucceeded.safeParse({
        event: 'PaymentSucceeded',
        payment_id: String(input.paymentId).trim(),
        order_id: validOrderId(String(input.orderId), 'orderId'),
        amount_cents: input.amountCents,
        currency: input.currency.trim(),
      });
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const field = { payment_id: 'paymentId', amount_cents: 'amountCents', currency: 'currency' }[String(issue?.path[0])] ?? 'input';
        throw new ValidationError(`${field}: ${issue?.message ?? 'invalid'}`, { field });
      }
      return ctx.commands.recordPayment(parsed.data, ctx.trace);
    },
  }),
);

addReconcile(builder);

/** Who subscribed (the token's subject), for the log line of a subscriber ended as too slow. */
const subscriberOf = (ctx: OrdersContext) => (ctx.access.open ? {} : { subscriber: ctx.access.sub });

builder.subscriptionType({
  fields: (t) => ({
    orderStatusChanges: t.field({
      type: OrderRef,
      description: `Every order, each time its status changes, new orders included (admins only). A subscriber more than ${MAX_PENDING_CHANGES} changes behind is ended with SUBSCRIBER_TOO_SLOW.`,
      subscribe: (_root, _args, ctx) => {
        requirePermission(ctx.access, 'followOrders', 'follow every order');
        // Documented as status changes: an order's stock arriving is one for orderStatusChanged only.
        return ctx.statusFeed.subscribe({ subscription: 'orderStatusChanges', accept: (c) => !c.stockArrived, details: subscriberOf(ctx) });
      },
      resolve: async (item: StatusChange | SubscriberTooSlowError, _args, ctx) => {
        const change = unlessTooSlow(item);
        return mustExist(await ctx.orders.byId(change.id), change.id);
      },
    }),
    orderStatusChanged: t.field({
      type: OrderRef,
      description:
        "The order as it is now, then again each time its status changes (on whichever instance processed it) and once its last backordered units arrived (awaitingStock turned false, the status unchanged); the stream ends after a final status (CANCELLED, FULFILLED). Only this order's changes are kept for it, so it is never ended for how busy the shop is.",
      args: { id: t.arg.id({ required: true }) },
      subscribe: async (_root, args, ctx) => {
        const id = validOrderId(args.id);
        const read = async () => visible(ctx, 'followOrders', 'follow orders', await ctx.orders.byId(id));
        // Checked here too, so that an order the caller may not see is refused as the request's
        // answer, not inside a stream.
        if (!(await read())) throw new NotFoundError(`order ${id} does not exist`, { orderId: id });
        // Other orders' changes are left out before they can wait for this stream: while it
        // reads its order, or its client has not taken the last status, only its order's count.
        const changes = ctx.statusFeed.subscribe({
          subscription: 'orderStatusChanged',
          accept: (c) => c.id === id,
          details: { orderId: id, ...subscriberOf(ctx) },
        });
        return followOrder(changes, read);
      },
      resolve: (item: Order | SubscriberTooSlowError) => unlessTooSlow(item),
    }),
    customerOrderStatusChanged: t.field({
      type: OrderRef,
      description: `Every status change of one customer's orders, including new orders (PENDING). A subscriber more than ${MAX_PENDING_CHANGES} changes of them behind is ended with SUBSCRIBER_TOO_SLOW.`,
      args: { customerId: t.arg.id({ required: true }) },
      subscribe: (_root, args, ctx) => {
        const customerId = validCustomerId(String(args.customerId));
        mayActFor(ctx, 'followOrders', customerId, 'follow');
        return ctx.statusFeed.subscribe({
          subscription: 'customerOrderStatusChanged',
          accept: (c) => c.customerId === customerId && !c.stockArrived,
          details: { customerId, ...subscriberOf(ctx) },
        });
      },
      resolve: async (item: StatusChange | SubscriberTooSlowError, _args, ctx) => {
        const change = unlessTooSlow(item);
        return mustExist(await ctx.orders.byId(change.id), change.id);
      },
    }),
  }),
});

addDeadLetterAdmin(builder, 'orders');

export const ordersSchema = subgraphSchema(builder.toSchema({ sortSchema: false }));
