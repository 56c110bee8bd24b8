import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { stopChild } from './process.ts';

/** A node process that logs `ready` once its SIGTERM handler is in place; `ignoring` makes that handler do nothing. */
async function child(ignoring: boolean) {
  const code = ignoring
    ? "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000); console.log('ready')"
    : "process.on('SIGTERM', () => process.exit(3)); setInterval(() => {}, 1000); console.log('ready')";
  const started = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(started.stdout, 'data');
  return started;
}

describe('stopChild', () => {
  it('resolves with the exit code of a child that exits on its signal', async () => {
    const obeying = await child(false);
    expect(await stopChild(obeying, 'SIGTERM', 10_000)).toBe(3);
    expect(obeying.signalCode).toBeNull();
  });

  it('kills a child still there after the grace period, rather than wait for it forever', async () => {
    const hanging = await child(true);
    try {
      const waited = new Promise((resolve) => setTimeout(() => resolve('still waiting'), 5_000));
      expect(await Promise.race([stopChild(hanging, 'SIGTERM', 300), waited])).toBeNull();
      expect(hanging.signalCode).toBe('SIGKILL');
    } finally {
      hanging.kill('SIGKILL');
    }
  });

  it('resolves at once for a child that has exited already', async () => {
    const obeying = await child(false);
    await stopChild(obeying, 'SIGTERM', 10_000);
    expect(await stopChild(obeying, 'SIGTERM', 10_000)).toBe(3);
  });
});
