import { describe, expect, it } from 'vitest';
import type { ScenarioKey } from './cli.ts';
import { scenarios } from './load.ts';

const firsts = (chosen: ScenarioKey[], rounds: number) =>
  Array.from({ length: rounds }, (_, i) => scenarios(1_000, i + 1, 1, chosen).map((s) => s.key));

describe('the load scenarios of a round', () => {
  it.each<[ScenarioKey[], ScenarioKey[][]]>([
    [
      ['gateway', 'floor'],
      [
        ['gateway', 'floor'],
        ['floor', 'gateway'],
        ['floor', 'gateway'],
        ['gateway', 'floor'],
      ],
    ],
    [
      ['even', 'floor'],
      [
        ['even', 'floor'],
        ['floor', 'even'],
      ],
    ],
    [
      ['even', 'gateway', 'floor', 'hot'],
      [
        ['even', 'gateway', 'floor', 'hot'],
        ['floor', 'gateway', 'even', 'hot'],
        ['gateway', 'floor', 'even', 'hot'],
        ['even', 'floor', 'gateway', 'hot'],
        ['floor', 'even', 'gateway', 'hot'],
        ['gateway', 'even', 'floor', 'hot'],
      ],
    ],
  ])(
    'given %j chosen, the second round of each pair runs the first one backwards, and each pair starts with the next one',
    (chosen, expected) => {
      expect(firsts(chosen, expected.length)).toEqual(expected);
    },
  );

  it('with three compared, runs each two of them once each way within two rounds, and the floor first in one', () => {
    const [one, two] = firsts(['even', 'gateway', 'floor'], 2);
    expect(new Set([one?.[0], two?.[0]])).toEqual(new Set(['even', 'floor']));
    for (const [a, b] of [
      ['even', 'gateway'],
      ['even', 'floor'],
      ['gateway', 'floor'],
    ] as const) {
      const before = [one, two].filter((order) => (order?.indexOf(a) ?? 0) < (order?.indexOf(b) ?? 0));
      expect(before).toHaveLength(1);
    }
  });

  it('holds only the chosen ones, under the same names every round', () => {
    const names = (round: number) => scenarios(1_000, round, 1, ['floor', 'steady']).map((s) => s.name);
    expect(names(1)).toHaveLength(2);
    expect(new Set(names(2))).toEqual(new Set(names(1)));
  });
});
