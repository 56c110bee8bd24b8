import { createServer } from 'node:net';

/** A port free at 127.0.0.1 right now (listened on and closed): for a service to start on, or a dead one to point at. */
export const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
