import { randomUUID } from 'node:crypto';

/** Time and fresh ids for the events a service writes; tests give a fixed one. */
export interface Clock {
  now(): Date;
  newId(): string;
}

export const systemClock: Clock = { now: () => new Date(), newId: () => randomUUID() };
