import { createServer } from 'node:net';
import { readFile } from 'node:fs/promises';
import { freePort } from '@stockflow/testing';

/** Whether `port` can be listened on at 127.0.0.1 now. */
const bindable = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

/**
 * `count` distinct free ports for listeners that stop and start again on the same port (the
 * inventory instances, which the gateway keeps addressing). Taken below the kernel's ephemeral
 * range: a port from it could be handed to some outgoing connection while the instance is down,
 * and the restart would then fail to bind it.
 */
export async function fixedPorts(count: number): Promise<number[]> {
  const range = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '');
  const ephemeralLow = Number(range.trim().split(/\s+/)[0]) || 32_768;
  const ports = new Set<number>();
  for (let tries = 0; ports.size < count && tries < 1_000; tries += 1) {
    const port = 10_000 + Math.floor(Math.random() * Math.max(1, ephemeralLow - 10_000));
    if (!ports.has(port) && (await bindable(port))) ports.add(port);
  }
  // A machine whose ephemeral range starts low: an ordinary free port, and the small risk above.
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}
