import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exposureWarning, startPlatform, type RunningPlatform } from '../src/platform.ts';
import { embeddedEnv } from './embedded.ts';

/** This machine's first address that is not loopback, if it has one. */
const external = Object.values(networkInterfaces())
  .flat()
  .find((i) => i?.family === 'IPv4' && !i.internal)?.address;

/** Resolves when a TCP connection to host:port is accepted, rejects with the socket's error otherwise. */
const reach = (host: string, port: number) =>
  new Promise<void>((resolve, reject) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });

/** The embedded `npm start` is reachable from this machine only, unless HOST says otherwise. */
describe('embedded platform exposure', () => {
  let embedded: Awaited<ReturnType<typeof embeddedEnv>>;
  let platform: RunningPlatform | undefined;

  beforeAll(async () => {
    embedded = await embeddedEnv('exposure');
  });
  afterAll(async () => {
    await platform?.close();
    await embedded.remove();
  });

  const start = async (env: Record<string, string> = {}) => {
    await platform?.close();
    platform = await startPlatform({ ...embedded.env, ...env });
    return platform;
  };
  /** Every listener, by name, so that a failure says which one is exposed. */
  const listeners = (p: RunningPlatform) => ({ inventory: p.inventory, orders: p.orders, dashboard: p.dashboard, gateway: p.gateway });
  const addresses = (p: RunningPlatform) => Object.fromEntries(Object.entries(listeners(p)).map(([name, { address }]) => [name, address]));
  const ports = (p: RunningPlatform) => Object.values(listeners(p)).map(({ port }) => port);

  it('listens on loopback only by default', async () => {
    const p = await start();
    expect(addresses(p)).toEqual({ inventory: '127.0.0.1', orders: '127.0.0.1', dashboard: '127.0.0.1', gateway: '127.0.0.1' });
    for (const port of ports(p)) await reach('127.0.0.1', port);
    expect(exposureWarning(p)).toBeUndefined();
  });

  it.skipIf(external === undefined)('refuses connections to the machine’s other addresses by default', async () => {
    const p = platform ?? (await start());
    for (const port of ports(p)) await expect(reach(external as string, port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('listens on every interface with HOST=0.0.0.0, and warns when authentication is off', async () => {
    const p = await start({ HOST: '0.0.0.0' });
    expect(addresses(p)).toEqual({ inventory: '0.0.0.0', orders: '0.0.0.0', dashboard: '0.0.0.0', gateway: '0.0.0.0' });
    for (const port of ports(p)) await reach(external ?? '127.0.0.1', port);
    // The dashboard still reaches the services behind it.
    const status = (await (await fetch(`http://127.0.0.1:${p.dashboard.port}/api/status`)).json()) as { services: { ready: boolean }[] };
    expect(status.services.map((s) => s.ready)).toEqual([true, true]);
    expect(exposureWarning(p)).toMatch(/listening on 0\.0\.0\.0 with authentication OFF/);
  });
});
