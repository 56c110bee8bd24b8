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
      ],
    ],
    [
      ['even', 'gateway'],
      [
        ['even', 'gateway'],
        ['gateway', 'even'],
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
        ['gateway', 'floor', 'even', 'hot'],
        ['floor', 'even', 'gateway', 'hot'],
      ],
    ],
  ])('given %j chosen, each of the compared ones goes first in turn, round by round', (chosen, expected) => {
    expect(firsts(chosen, expected.length)).toEqual(expected);
  });

  it('holds only the chosen ones, under the same names every round', () => {
    const names = (round: number) => scenarios(1_000, round, 1, ['floor', 'steady']).map((s) => s.name);
    expect(names(1)).toHaveLength(2);
    expect(new Set(names(2))).toEqual(new Set(names(1)));
  });
});
