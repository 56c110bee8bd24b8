import SchemaBuilder from '@pothos/core';
import {
  addDeadLetterAdmin,
  type DeadLetterAdminContext,
  afterPosition,
  batchLoader,
  connectionType,
  DateTimeScalar,
  MAX_ITEMS_EXTENSION,
  pageSize,
  entity,
  subgraphSchema,
  type StockflowSchemaTypes,
} from '@stockflow/graphql';
import { MAX_STOCK_LOCATIONS } from '@stockflow/contracts';
import { may, requirePermission, ValidationError } from '@stockflow/platform';
import {
  LIMITS,
  MAIN_LOCATION,
  parseProductId,
  validBackorderLimit,
  validLocationCode,
  validName,
  validNewLocation,
  validNewProduct,
  validPrice,
  validQuantity,
  validReason,
  validSku,
} from '../domain/catalog.ts';
import type { CatalogRepository, Product, StockLevel, StockLocation, StockMovement } from '../db/catalog.ts';

export interface InventoryContext extends DeadLetterAdminContext {
  catalog: CatalogRepository;
  /** The products another subgraph refers to (`_entities`), read in one query per request. */
  productById: (id: number) => Promise<Product | undefined>;
  /** The stock levels of the products of a request, read in one query. */
  levelsOf: (productId: number) => Promise<StockLevel[]>;
}

/** The products another subgraph refers to, read in one query per turn of the event loop. */
export const productLoader = (catalog: Pick<CatalogRepository, 'byIds'>): ((id: number) => Promise<Product | undefined>) =>
  batchLoader(async (ids: number[]) => {
    const products = new Map((await catalog.byIds(ids)).map((p) => [p.id, p]));
    return (id) => products.get(id);
  });

/** The stock levels of the products a request asks for, read in one query per turn of the event loop. */
export const levelsLoader = (catalog: Pick<CatalogRepository, 'levels'>): ((productId: number) => Promise<StockLevel[]>) =>
  batchLoader(async (ids: number[]) => {
    const byProduct = new Map<number, StockLevel[]>();
    for (const level of await catalog.levels(ids)) byProduct.set(level.productId, [...(byProduct.get(level.productId) ?? []), level]);
    return (id) => byProduct.get(id) ?? [];
  });

const locationOf = (code: string | null | undefined) =>
  code === null || code === undefined ? MAIN_LOCATION : validLocationCode(code, 'locationCode');

const manage = (ctx: InventoryContext) => requirePermission(ctx.access, 'manageCatalog', 'manage products and stock');
const browse = (ctx: InventoryContext) => requirePermission(ctx.access, 'readCatalog', 'read the catalog');

const builder = new SchemaBuilder<StockflowSchemaTypes<InventoryContext>>({ defaultFieldNullability: false });

builder.addScalarType('DateTime', DateTimeScalar);

const MovementKindEnum = builder.enumType('StockMovementKind', {
  description: 'What changed the stock.',
  values: {
    INITIAL: { description: 'Stock the product was created with.' },
    RESTOCK: { description: 'Units received.' },
    ADJUSTMENT: { description: 'A manual correction, with its reason.' },
    RESERVATION: { description: 'Units held for an order.' },
    RELEASE: { description: 'Held units returned to available (order cancelled).' },
    SALE: { description: 'Held units shipped (order fulfilled).' },
    TRANSFER: { description: 'Available units moved between locations: one entry leaving, one arriving.' },
  } as const,
});

const StockMovementRef = builder.objectRef<StockMovement>('StockMovement').implement({
  description: "One entry of a product's stock ledger. Quantities are units; changes are signed.",
  fields: (t) => ({
    id: t.exposeID('id'),
    productId: t.exposeID('productId'),
    kind: t.field({ type: MovementKindEnum, resolve: (m) => m.kind }),
    quantity: t.exposeInt('quantity', { description: 'Units moved (always positive).' }),
    availableChange: t.exposeInt('availableChange'),
    reservedChange: t.exposeInt('reservedChange'),
    soldChange: t.exposeInt('soldChange'),
    availableAfter: t.exposeInt('availableAfter'),
    reservedAfter: t.exposeInt('reservedAfter'),
    soldAfter: t.exposeInt('soldAfter'),
    orderId: t.string({
      nullable: true,
      description: 'The order, for reservations, releases and sales; null unless the caller may list every order (an admin).',
      // Inventory cannot tell whose order it is: to anyone who may not list every order, any order id would be someone else's news.
      resolve: (m, _args, ctx) => (may(ctx.access, 'listOrders') ? m.orderId : null),
    }),
    reason: t.exposeString('reason', { nullable: true }),
    locationCode: t.exposeString('locationCode', {
      description: "The location whose stock changed (the counters after it are the product's sums).",
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const StockLocationRef = builder.objectRef<StockLocation>('StockLocation').implement({
  description: 'A place stock is kept at.',
  fields: (t) => ({
    id: t.exposeID('id'),
    code: t.exposeString('code', { description: 'Unique: upper-case letters, digits and "-", at most 32 characters.' }),
    name: t.exposeString('name'),
    priority: t.exposeInt('priority', { description: 'Allocation prefers the lowest number, then the code.' }),
  }),
});

const StockLevelRef = builder.objectRef<StockLevel>('StockLevel').implement({
  description: "A product's stock at one location.",
  fields: (t) => ({
    location: t.field({ type: StockLocationRef, resolve: (level) => level.location }),
    available: t.exposeInt('available'),
    reserved: t.exposeInt('reserved'),
    sold: t.exposeInt('sold'),
  }),
});

const ProductRef = builder.objectRef<Product>('Product').implement({
  // An entity of the graph: another subgraph may refer to a product by id.
  ...entity('id', async (reference, ctx: InventoryContext) => {
    browse(ctx);
    return (await ctx.productById(parseProductId(reference.id))) ?? null;
  }),
  fields: (t) => ({
    id: t.exposeID('id', { description: 'The integer product id used in events.' }),
    sku: t.exposeString('sku'),
    name: t.exposeString('name'),
    priceCents: t.exposeInt('priceCents', { nullable: true }),
    availableStock: t.exposeInt('availableStock', { description: 'Units that can still be reserved.' }),
    reservedStock: t.exposeInt('reservedStock', { description: 'Units held for orders not yet fulfilled or cancelled.' }),
    soldStock: t.exposeInt('soldStock', { description: 'Units of fulfilled orders.' }),
    stockLevels: t.field({
      type: [StockLevelRef],
      extensions: { [MAX_ITEMS_EXTENSION]: MAX_STOCK_LOCATIONS },
      description: 'The stock at each location that has had any, in order of allocation preference; the stock fields above are their sums.',
      resolve: (product, _args, ctx) => ctx.levelsOf(product.id),
    }),
    backorderLimit: t.exposeInt('backorderLimit', {
      description: 'Units that may be promised beyond what is on hand, over all locations.',
    }),
    backorderedStock: t.exposeInt('backorderedStock', { description: 'Units promised to orders and not on hand yet.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    movements: t.field({
      type: StockMovementConnection,
      description: 'The stock ledger of this product, oldest first.',
      args: {
        first: t.arg.int(),
        after: t.arg.string(),
        kinds: t.arg({ type: [MovementKindEnum] }),
      },
      resolve: (product, args, ctx) =>
        ctx.catalog.movements(product.id, {
          afterId: afterPosition(args.after),
          limit: pageSize(args.first),
          kinds: args.kinds ?? undefined,
        }),
    }),
  }),
});

/**
 * The Order Service's order line, as far as this service knows it: its product. The gateway asks
 * here for the products of an answer's lines (`_entities` by productId, read in one query), so a
 * line whose product this service does not have answers `product: null`, as the schema says.
 */
builder.objectRef<{ productId: string }>('OrderLine').implement({
  ...entity('productId', (reference: { productId: string }) => ({ productId: reference.productId })),
  fields: (t) => ({
    productId: t.exposeID('productId'),
    product: t.field({
      type: ProductRef,
      nullable: true,
      description: 'The product, from the Inventory Service; null when it has no such product.',
      resolve: async (line, _args, ctx) => {
        browse(ctx);
        return (await ctx.productById(parseProductId(line.productId, 'productId'))) ?? null;
      },
    }),
  }),
});

const ProductConnection = connectionType(builder, 'Product', ProductRef, (p) => p.id);
const StockMovementConnection = connectionType(builder, 'StockMovement', StockMovementRef, (m) => m.id);

const CreateProductInput = builder.inputType('CreateProductInput', {
  fields: (t) => ({
    sku: t.string({ required: true }),
    name: t.string({ required: true }),
    priceCents: t.int(),
    initialStock: t.int({ required: true, description: 'Units on hand at MAIN.' }),
    backorderLimit: t.int({ description: 'Units that may be promised beyond what is on hand; 0 when left out.' }),
  }),
});

const CreateStockLocationInput = builder.inputType('CreateStockLocationInput', {
  fields: (t) => ({
    code: t.string({ required: true, description: 'Unique: upper-case letters, digits and "-", at most 32 characters.' }),
    name: t.string({ required: true }),
    priority: t.int({ description: 'Allocation prefers the lowest number, then the code; 100 (as MAIN) when left out.' }),
  }),
});

const UpdateProductInput = builder.inputType('UpdateProductInput', {
  description: 'Fields left out keep their value; priceCents: null clears the price.',
  fields: (t) => ({
    sku: t.string(),
    name: t.string(),
    priceCents: t.int(),
    backorderLimit: t.int({ description: 'May not be below the units backordered now.' }),
  }),
});

builder.queryType({
  fields: (t) => ({
    stockLocations: t.field({
      type: [StockLocationRef],
      extensions: { [MAX_ITEMS_EXTENSION]: MAX_STOCK_LOCATIONS },
      description: 'Every stock location, in order of allocation preference.',
      resolve: (_root, _args, ctx) => {
        browse(ctx);
        return ctx.catalog.locations();
      },
    }),
    product: t.field({
      type: ProductRef,
      nullable: true,
      args: { id: t.arg.id({ required: true }) },
      resolve: async (_root, args, ctx) => {
        browse(ctx);
        return (await ctx.catalog.byIds([parseProductId(args.id)]))[0] ?? null;
      },
    }),
    products: t.field({
      type: ProductConnection,
      description: 'Products in id order, filtered. All filters combine.',
      args: {
        ids: t.arg.idList({ description: `At most ${LIMITS.maxIdsPerQuery}.` }),
        search: t.arg.string({ description: 'Part of the name or SKU, any case.' }),
        availableAtMost: t.arg.int({ description: 'Only products with at most this many units available (low stock).' }),
        inStock: t.arg.boolean({ description: 'true: only available > 0; false: only sold out.' }),
        first: t.arg.int({ description: `Page size, default ${LIMITS.defaultPageSize}, at most ${LIMITS.maxPageSize}.` }),
        after: t.arg.string(),
      },
      resolve: (_root, args, ctx) => {
        browse(ctx);
        if (args.ids && args.ids.length > LIMITS.maxIdsPerQuery) {
          throw new ValidationError(`ids accepts at most ${LIMITS.maxIdsPerQuery} ids`, { field: 'ids' });
        }
        if (args.search && args.search.length > LIMITS.searchLength) {
          throw new ValidationError(`search must be at most ${LIMITS.searchLength} characters`, { field: 'search' });
        }
        return ctx.catalog.list(
          {
            ids: args.ids?.map((id) => parseProductId(id, 'ids')),
            search: args.search?.trim() || undefined,
            availableAtMost: args.availableAtMost ?? undefined,
            inStock: args.inStock ?? undefined,
          },
          { afterId: afterPosition(args.after), limit: pageSize(args.first) },
        );
      },
    }),
    stockMovements: t.field({
      type: StockMovementConnection,
      description: 'The stock ledger of one product, oldest first.',
      args: {
        productId: t.arg.id({ required: true }),
        kinds: t.arg({ type: [MovementKindEnum] }),
        first: t.arg.int(),
        after: t.arg.string(),
      },
      resolve: async (_root, args, ctx) => {
        browse(ctx);
        const id = parseProductId(args.productId, 'productId');
        const [product] = await ctx.catalog.byIds([id]);
        if (!product) throw new ValidationError(`product ${id} does not exist`, { field: 'productId' });
        return ctx.catalog.movements(id, {
          afterId: afterPosition(args.after),
          limit: pageSize(args.first),
          kinds: args.kinds ?? undefined,
        });
      },
    }),
  }),
});

builder.mutationType({
  fields: (t) => ({
    createProduct: t.field({
      type: ProductRef,
      args: { input: t.arg({ type: CreateProductInput, required: true }) },
      resolve: (_root, { input }, ctx) => {
        manage(ctx);
        return ctx.catalog.create(
          validNewProduct({
            sku: input.sku,
            name: input.name,
            priceCents: input.priceCents ?? null,
            initialStock: input.initialStock,
            backorderLimit: input.backorderLimit ?? undefined,
          }),
        );
      },
    }),
    updateProduct: t.field({
      type: ProductRef,
      args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateProductInput, required: true }) },
      resolve: (_root, { id, input }, ctx) => {
        manage(ctx);
        return ctx.catalog.update(parseProductId(id), {
          sku: input.sku === null || input.sku === undefined ? undefined : validSku(input.sku),
          name: input.name === null || input.name === undefined ? undefined : validName(input.name),
          priceCents: input.priceCents === undefined ? undefined : validPrice(input.priceCents),
          backorderLimit:
            input.backorderLimit === null || input.backorderLimit === undefined ? undefined : validBackorderLimit(input.backorderLimit),
        });
      },
    }),
    restock: t.field({
      type: ProductRef,
      description:
        'Units received at a location (MAIN when none is named): adds to available stock, records a RESTOCK in the ledger, and fills backorders from them, oldest order first.',
      args: {
        productId: t.arg.id({ required: true }),
        quantity: t.arg.int({ required: true }),
        note: t.arg.string(),
        locationCode: t.arg.string(),
      },
      resolve: (_root, args, ctx) => {
        manage(ctx);
        return ctx.catalog.restock(
          parseProductId(args.productId, 'productId'),
          validQuantity(args.quantity),
          args.note ? validReason(args.note) : null,
          locationOf(args.locationCode),
        );
      },
    }),
    adjustStock: t.field({
      type: ProductRef,
      description:
        'Corrects available stock at a location (MAIN when none is named) by a signed delta, with a reason (stocktake, damage...); units added fill backorders first.',
      args: {
        productId: t.arg.id({ required: true }),
        delta: t.arg.int({ required: true }),
        reason: t.arg.string({ required: true }),
        locationCode: t.arg.string(),
      },
      resolve: (_root, args, ctx) => {
        manage(ctx);
        return ctx.catalog.adjust(
          parseProductId(args.productId, 'productId'),
          args.delta,
          validReason(args.reason),
          locationOf(args.locationCode),
        );
      },
    }),
    transferStock: t.field({
      type: ProductRef,
      description:
        'Moves available units between locations (a TRANSFER in the ledger on both sides); the units arriving fill backorders first.',
      args: {
        productId: t.arg.id({ required: true }),
        fromLocation: t.arg.string({ required: true }),
        toLocation: t.arg.string({ required: true }),
        quantity: t.arg.int({ required: true }),
      },
      resolve: (_root, args, ctx) => {
        manage(ctx);
        return ctx.catalog.transfer(
          parseProductId(args.productId, 'productId'),
          validLocationCode(args.fromLocation, 'fromLocation'),
          validLocationCode(args.toLocation, 'toLocation'),
          validQuantity(args.quantity),
        );
      },
    }),
    createStockLocation: t.field({
      type: StockLocationRef,
      args: { input: t.arg({ type: CreateStockLocationInput, required: true }) },
      resolve: (_root, { input }, ctx) => {
        manage(ctx);
        return ctx.catalog.createLocation(validNewLocation(input));
      },
    }),
  }),
});

addDeadLetterAdmin(builder, 'inventory');

export const inventorySchema = subgraphSchema(builder.toSchema({ sortSchema: false }));
