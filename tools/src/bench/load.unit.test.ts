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
        ['floor', 'gateway'],
        ['gateway', 'floor'],
        ['gateway', 'floor'],
        ['floor', 'gateway'],
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
        ['even', 'floor', 'gateway', 'hot'],
        ['gateway', 'floor', 'even', 'hot'],
        ['floor', 'gateway', 'even', 'hot'],
        ['even', 'gateway', 'floor', 'hot'],
        ['gateway', 'even', 'floor', 'hot'],
        ['floor', 'even', 'gateway', 'hot'],
      ],
    ],
  ])(
    'given %j chosen, the second round of each pair runs the first one backwards, and each pair starts with the next one',
    (chosen, expected) => {
      expect(firsts(chosen, expected.length)).toEqual(expected);
    },
  );

  it('with three compared, runs each two of them once each way in two rounds, direct first in one and the gateway in the other', () => {
    const [one, two] = firsts(['even', 'gateway', 'floor'], 2);
    expect([one?.[0], two?.[0]]).toEqual(['even', 'gateway']);
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
