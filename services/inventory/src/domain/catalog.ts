import { LocationCode, MAIN_LOCATION, MAX_INT32, productIdFrom } from '@stockflow/contracts';
import { PAGE_LIMITS } from '@stockflow/graphql';
import { ValidationError } from '@stockflow/platform';

export const LIMITS = {
  skuLength: 64,
  nameLength: 200,
  reasonLength: 500,
  searchLength: 200,
  maxPriceCents: 1_000_000_000,
  maxStock: MAX_INT32,
  ...PAGE_LIMITS,
} as const;

export interface NewProduct {
  sku: string;
  name: string;
  priceCents: number | null;
  initialStock: number;
  /** Units that may be promised beyond what is on hand; 0 when left out. */
  backorderLimit?: number | undefined;
}

export interface ProductChanges {
  sku?: string | undefined;
  name?: string | undefined;
  priceCents?: number | null | undefined;
  backorderLimit?: number | undefined;
}

export { MAIN_LOCATION };
/** A new location's priority when none is given: MAIN's, so it is preferred only by its code. */
export const DEFAULT_LOCATION_PRIORITY = 100;

export interface NewLocation {
  code: string;
  name: string;
  priority: number;
}

export function validLocationCode(raw: string, field = 'code'): string {
  const code = raw.trim();
  // The contract's rule, so a code the API accepts is one BackorderFilled and StockReserved may carry.
  if (!LocationCode.safeParse(code).success) {
    throw new ValidationError(`${field} must be 1 to 32 upper-case letters, digits or "-", got "${code.slice(0, 40)}"`, { field });
  }
  return code;
}

export function validNewLocation(input: { code: string; name: string; priority?: number | null | undefined }): NewLocation {
  const priority = input.priority ?? DEFAULT_LOCATION_PRIORITY;
  if (!Number.isInteger(priority) || priority < 0 || priority > LIMITS.maxStock) {
    throw new ValidationError(`priority must be a whole number from 0 to ${LIMITS.maxStock}`, { field: 'priority' });
  }
  return { code: validLocationCode(input.code), name: validName(input.name), priority };
}

export function validBackorderLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 0 || limit > LIMITS.maxStock) {
    throw new ValidationError(`backorderLimit must be a whole number from 0 to ${LIMITS.maxStock}`, { field: 'backorderLimit' });
  }
  return limit;
}

/** A transfer moves units that are available at its source to another location. */
export function validTransfer(from: string, to: string, quantity: number, availableAtSource: number): void {
  validQuantity(quantity);
  if (from === to) throw new ValidationError('a transfer needs two different locations', { field: 'toLocation' });
  if (quantity > availableAtSource) {
    throw new ValidationError(`cannot move ${quantity} units: only ${availableAtSource} are available at ${from}`, {
      field: 'quantity',
      available: availableAtSource,
    });
  }
}

const SKU_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function validSku(raw: string): string {
  const sku = raw.trim();
  if (sku.length === 0) throw new ValidationError('sku must not be empty', { field: 'sku' });
  if (sku.length > LIMITS.skuLength) throw new ValidationError(`sku must be at most ${LIMITS.skuLength} characters`, { field: 'sku' });
  if (!SKU_PATTERN.test(sku)) {
    throw new ValidationError('sku may contain only letters, digits, ".", "_" and "-", starting with a letter or digit', { field: 'sku' });
  }
  return sku;
}

export function validName(raw: string): string {
  const name = raw.trim();
  if (name.length === 0) throw new ValidationError('name must not be empty', { field: 'name' });
  if (name.length > LIMITS.nameLength) throw new ValidationError(`name must be at most ${LIMITS.nameLength} characters`, { field: 'name' });
  return name;
}

export function validPrice(price: number | null): number | null {
  if (price === null) return null;
  if (!Number.isInteger(price) || price < 0 || price > LIMITS.maxPriceCents) {
    throw new ValidationError(`priceCents must be a whole number from 0 to ${LIMITS.maxPriceCents}`, { field: 'priceCents' });
  }
  return price;
}

export function validQuantity(quantity: number, field = 'quantity'): number {
  if (!Number.isInteger(quantity) || quantity <= 0 || quantity > LIMITS.maxStock) {
    throw new ValidationError(`${field} must be a positive whole number (at most ${LIMITS.maxStock})`, { field });
  }
  return quantity;
}

export function validReason(raw: string): string {
  const reason = raw.trim();
  if (reason.length === 0) throw new ValidationError('reason must not be empty', { field: 'reason' });
  if (reason.length > LIMITS.reasonLength)
    throw new ValidationError(`reason must be at most ${LIMITS.reasonLength} characters`, { field: 'reason' });
  return reason;
}

export function validNewProduct(input: NewProduct): NewProduct {
  if (!Number.isInteger(input.initialStock) || input.initialStock < 0 || input.initialStock > LIMITS.maxStock) {
    throw new ValidationError(`initialStock must be a whole number from 0 to ${LIMITS.maxStock}`, { field: 'initialStock' });
  }
  return {
    sku: validSku(input.sku),
    name: validName(input.name),
    priceCents: validPrice(input.priceCents),
    initialStock: input.initialStock,
    backorderLimit: validBackorderLimit(input.backorderLimit ?? 0),
  };
}

/** A product id as given in GraphQL (`ID`, so a string) to the integer used in events. */
export function parseProductId(raw: string | number, field = 'id'): number {
  const id = productIdFrom(raw);
  if (id === undefined) {
    throw new ValidationError(`${field} must be a product id (a positive integer), got "${String(raw).trim().slice(0, 40)}"`, { field });
  }
  return id;
}

/** A restock may not take the product's available, the sum over its locations (so any location's too), past what a counter can store. */
export function validRestock(quantity: number, productAvailable: number): number {
  if (productAvailable + quantity > LIMITS.maxStock)
    throw new ValidationError('stock would exceed the largest storable amount', { field: 'quantity' });
  return quantity;
}

/**
 * An adjustment moves available stock at a location by `delta` (a count after a stocktake,
 * damage, a found box). It may not take the location's available below zero: units already
 * reserved belong to orders. Nor may it take the product's available, the sum over its
 * locations, past what a counter can store.
 */
export function validAdjustment(delta: number, available: number, productAvailable: number): number {
  if (!Number.isInteger(delta) || delta === 0 || Math.abs(delta) > LIMITS.maxStock) {
    throw new ValidationError('delta must be a non-zero whole number', { field: 'delta' });
  }
  if (available + delta < 0) {
    throw new ValidationError(`cannot remove ${-delta} units: only ${available} are available (reserved units belong to orders)`, {
      field: 'delta',
      available,
    });
  }
  if (productAvailable + delta > LIMITS.maxStock)
    throw new ValidationError('stock would exceed the largest storable amount', { field: 'delta' });
  return delta;
}
