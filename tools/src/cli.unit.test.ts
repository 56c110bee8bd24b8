import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createAuthenticator } from '@stockflow/platform';
import { parseBenchArgs } from './bench/cli.ts';
import { scenarios } from './bench/load.ts';

const run = (tool: string, args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, tool), ...args], { encoding: 'utf8', timeout: 30_000 });

describe('command-line tools refuse bad input with a clear message', () => {
  it.each([
    [['--orders', 'ten'], '--orders: must be a number'],
    [['--hot-share', '2'], '--hot-share: must be from 0 to 1'],
    [['--orders-url', 'not a url'], '--orders-url: must be a URL'],
    [['--products', '3', '--hot', '5'], '--hot: cannot exceed --products'],
    [['--catalog', 'LG"}'], '--catalog: must be 1 to 20 letters or digits'],
    [['--frobnicate'], "Unknown option '--frobnicate'"],
    [['--pay-share', '1.5'], '--pay-share: must be from 0 to 1'],
    [['--pay-after-ms=-5'], '--pay-after-ms: must be 0 or more'],
  ])('loadgen %j', (args, message) => {
    const result = run('loadgen.ts', args);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(message);
  });

  it('loadgen names the platform it cannot reach', () => {
    const result = run('loadgen.ts', ['--orders-url', 'http://127.0.0.1:9/graphql']);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('cannot reach the Order Service at http://127.0.0.1:9/graphql');
  });

  it.each([
    [['--repeat', '0'], '--repeat: must be positive'],
    [['--warmup', 'some'], '--warmup: must be a number'],
    [['--scenarios', 'even,rush'], '--scenarios'],
    [['--only', 'distributed-3'], '--only'],
    [['--scenarios', 'even,joind'], '--scenarios.1: Invalid option: expected one of "even"|"gateway"|'],
    [['--only', 'embedded', '--scenarios', 'even,gateway,joined'], '--scenarios: gateway, joined run on distributed configurations only'],
    [['--only', 'embedded', '--scenarios', 'expiry'], '--scenarios: expiry run on distributed configurations only'],
    [['--only', 'embedded', '--scenarios', 'even,floor'], '--scenarios: floor run on distributed configurations only'],
    [['--locations', '0'], '--locations: must be positive'],
    [['--locations', '51'], '--locations: must be at most 50'],
    [['--locations', 'x'], '--locations: must be a number'],
    [['--locations', '2.5'], '--locations: must be a whole number'],
  ])('bench %j', (args, message) => {
    const result = run('bench/main.ts', args);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(message);
  });

  it('bench stocks one location unless --locations names more, and its load scenarios ask for them', () => {
    expect(parseBenchArgs([]).locations).toBe(1);
    const { locations, orders, scenarios: chosen } = parseBenchArgs(['--locations', '3', '--orders', '200']);
    expect(locations).toBe(3);
    const loads = scenarios(orders, 1, locations, chosen);
    expect(loads.length).toBeGreaterThan(0);
    for (const scenario of loads) expect(scenario.options.locations, scenario.key).toBe(3);
  });

  it.each([
    [['refunds'], 'unknown mode "refunds": one of orders, payments'],
    [['payments', '--late-share', 'some'], '--late-share: must be a number'],
    [['payments', '--pay-share', '0.8', '--fail-share', '0.3'], '--pay-share: the five shares add up to more than 1'],
    [['payments', '--duration', '5'], "Unknown option '--duration'"],
    [['payments', '--orders', '0'], '--orders: must be positive'],
    [['--pay-share', '1'], "Unknown option '--pay-share'"],
    [['--amqp-url', 'amqp://app:12/pw@rabbit'], "--amqp-url: a '/', '?' or '#' in the user or password must be percent-encoded"],
    [
      ['--amqp-url', 'amqp://app:pw@rabbit.example.com'],
      'refusing to run against the broker amqp://rabbit.example.com: not on this machine',
    ],
    [
      ['payments', '--amqp-url', 'amqp://app:pw@[2001:db8::7]'],
      'refusing to run against the broker amqp://[2001:db8::7]: not on this machine',
    ],
    [
      ['payments', '--orders-url', 'http://shop.example.com/graphql'],
      'refusing to run against the Order API http://shop.example.com/graphql',
    ],
  ])('simulate %j', (args, message) => {
    const result = run('simulate.ts', args);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(message);
  });

  it('simulate payments names the Order API it cannot reach', () => {
    const result = run('simulate.ts', ['payments', '--orders-url', 'http://127.0.0.1:9/graphql']);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('cannot reach the Order Service at http://127.0.0.1:9/graphql');
  });

  it('token mints a payments token, and refuses a role there is not', async () => {
    const secret = 'a-token-cli-test-secret-of-32-characters';
    const minted = run('token.ts', ['--role', 'payments', '--sub', 'psp-webhook', '--secret', secret]);
    expect(minted.status, minted.stderr).toBe(0);
    const auth = createAuthenticator({ AUTH_JWT_SECRET: secret, AUTH_DISABLED: 'false' });
    expect(await auth.authenticate(`Bearer ${minted.stdout.trim()}`)).toEqual({ open: false, sub: 'psp-webhook', role: 'payments' });
    const refused = run('token.ts', ['--role', 'root', '--sub', 'x', '--secret', secret]);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('--role: must be one of admin, customer, payments');
  });

  it('dlq refuses an unknown queue', () => {
    const result = run('dlq.ts', ['list', 'no.such.queue']);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('unknown queue "no.such.queue"');
  });
});
