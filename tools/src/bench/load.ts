import { runLoad, type LoadOptions } from '@stockflow/loadgen';
import type { ScenarioKey } from './cli.ts';
import type { Front, Platform } from './platforms.ts';

/** What a scenario asks of the load generator; the bench's defaults fill in the rest. */
type BenchLoad = Partial<LoadOptions> & Pick<LoadOptions, 'orders'>;

export interface LoadScenario {
  key: ScenarioKey;
  name: string;
  options: BenchLoad;
  /** Sent to a front's /graphql instead of the services (distributed platforms only). */
  via?: Front;
}

export const EVEN: Partial<LoadOptions> = { concurrency: 200, products: 1_000, hot: 0, hotShare: 0 };

const others = (orders: number, round: number, locations: number): LoadScenario[] => [
  {
    key: 'hot',
    name: 'hot skew (5 hot, 90% of orders)',
    // A catalog of its own each round, so its hot products start with their 100 units (the even
    // catalog's products hold a million each, and a sold-out doorbuster is another scenario).
    options: { orders, concurrency: 200, products: 1_000, hot: 5, hotShare: 0.9, hotStock: 100, catalog: `HOT${round}`, locations },
  },
  {
    key: 'steady',
    name: 'steady 500/s',
    options: { orders: Math.min(orders, 10_000), rate: 500, concurrency: 1_000, products: 1_000, hot: 0, hotShare: 0, locations },
  },
];

/** The load scenarios of a round among those `chosen`, their catalogs stocked at `locations` locations. */
export const scenarios = (orders: number, round: number, locations: number, chosen: readonly ScenarioKey[]): LoadScenario[] => {
  // One load, sent directly or, as a client of the gateway would send it, through a front.
  const options = { ...EVEN, orders, locations };
  const even: LoadScenario = { key: 'even', name: 'even catalog (concurrency 200)', options };
  const gateway: LoadScenario = { key: 'gateway', name: 'even catalog via the gateway (concurrency 200)', options, via: 'gateway' };
  const floor: LoadScenario = {
    key: 'floor',
    name: 'even catalog via a bare forwarder, the floor under the gateway (concurrency 200)',
    options,
    via: 'forwarder',
  };
  // The machine's drift, what one scenario leaves to the next (autovacuum, checkpoints) and the
  // first of a turn's extra cost (docs/performance.md, History) must spread over the compared ones
  // instead of landing on one. Rounds go in pairs: the second of a pair runs the first's order
  // backwards, so within each pair of rounds every two compared ones run once each way; each pair
  // starts with the next one. With all three, the first pair (what --repeat 2 runs) puts direct
  // first in one round and the gateway in the other, the two the targets compare, with the floor
  // between them both times: the floor, a reference, then never pays for going first, which can
  // only make the gateway look the costlier beside it.
  const compared = [even, floor, gateway].filter((s) => chosen.includes(s.key));
  const turn = Math.floor((round - 1) / 2) % Math.max(compared.length, 1);
  const rotated = [...compared.slice(turn), ...compared.slice(0, turn)];
  const ordered = round % 2 === 0 ? rotated.reverse() : rotated;
  return [...ordered, ...others(orders, round, locations).filter((s) => chosen.includes(s.key))];
};

/** One load scenario against a platform, with the bench's defaults; through a front when asked. */
export const load = (platform: Platform, options: BenchLoad, front?: Front) => {
  const via = front && platform.fronts?.[front];
  if (front && !via) throw new Error(`${platform.name} runs no ${front}`);
  return runLoad({
    ordersUrl: via ?? platform.ordersUrl,
    inventoryUrl: via ?? platform.inventoryUrl,
    concurrency: 200,
    products: 1_000,
    hot: 0,
    hotShare: 0,
    stock: 1_000_000,
    hotStock: 100,
    settleTimeoutMs: 300_000,
    audit: true,
    token: platform.token,
    ...options,
  });
};
