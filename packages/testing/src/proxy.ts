import net from 'node:net';

/**
 * A TCP proxy of the test's own between a service and a shared server (RabbitMQ, PostgreSQL), so a
 * test can cut and restore the connection without touching the server other tests use. It
 * listens on `listenOn` (`::1` to reach a server over IPv6 that listens on IPv4 only).
 */
export async function startTcpProxy(target: { host: string; port: number }, { listenOn = '127.0.0.1' } = {}) {
  const sockets = new Set<net.Socket>();
  const upstreams = new Set<net.Socket>();
  let open = true;
  let holding = false;
  let blackholed = false;
  // Half-closes are passed on by the pipes, not answered by the sockets themselves: a blackholed
  // connection must not answer its client's FIN either.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    if (!open) {
      client.destroy();
      return;
    }
    if (blackholed) {
      sockets.add(client);
      client.on('close', () => sockets.delete(client));
      client.on('error', () => undefined);
      client.pause();
      return;
    }
    const upstream = net.connect({ port: target.port, host: target.host, allowHalfOpen: true });
    upstreams.add(upstream);
    upstream.on('close', () => upstreams.delete(upstream));
    if (holding) upstream.pause();
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, listenOn, resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    /** Drops every open connection and refuses new ones until `restore`. */
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
    },
    restore() {
      open = true;
    },
    /** Holds what the server sends (the client's requests still reach it) until `release`. */
    hold() {
      holding = true;
      for (const s of upstreams) s.pause();
    },
    /** Passes on everything held at once: the client reads it in one go. */
    release() {
      holding = false;
      for (const s of upstreams) s.resume();
    },
    /**
     * Passes nothing more either way, and leaves every connection open: a server that stops
     * answering (unlike `cut`, which the client notices at once). Lasts until `close`.
     */
    blackhole() {
      blackholed = true;
      for (const s of sockets) {
        s.unpipe();
        s.pause();
      }
    },
    async close() {
      this.cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** `url` with its host and port replaced by the proxy's. */
export function viaProxy(url: string, port: number): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(port);
  return u.toString();
}
