/** How the dashboard writes errors, money and times. */
import { ApiError } from './api.ts';

export const message = (error: unknown) =>
  error instanceof ApiError && error.code ? `${error.message} (${error.code})` : (error as Error).message;
export const money = (cents: number, currency: string) =>
  new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(cents / 100);
export const clock = (iso: string) => new Date(iso).toLocaleTimeString();
