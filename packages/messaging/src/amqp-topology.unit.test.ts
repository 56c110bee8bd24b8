import type { LookupAddress } from 'node:dns';
import dns from 'node:dns/promises';
import type { LookupFunction } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { connectionTarget } from './amqp-topology.ts';

/** What the socket gets for a node's host, as net.connect asks (one address, or all of them). */
const resolve = (lookup: LookupFunction, host: string, all: boolean) =>
  new Promise<string | LookupAddress[]>((done, fail) =>
    lookup(host, { all }, (error, address, family) =>
      error ? fail(error) : done(typeof address === 'string' ? `${address}/${family}` : address),
    ),
  );

/** How rabbitmq-client reads each of `hosts`: split at every `:`, the first two pieces kept. */
const asClientReads = (host: string) => {
  const [hostname, port] = host.split(':');
  return { hostname, port };
};

describe('connectionTarget: the nodes rabbitmq-client is given', () => {
  it('gives names and IPv4 addresses as host:port, with their default ports', () => {
    const target = connectionTarget('amqp://u:p@rabbit-0,amqp://u:p@10.0.0.2:5682,amqp://u:p@rabbit-2');
    expect(target).toEqual({
      url: 'amqp://u:p@rabbit-0',
      hosts: ['rabbit-0:5672', '10.0.0.2:5682', 'rabbit-2:5672'],
    });
    expect(connectionTarget('amqps://u:p@rabbit').hosts).toEqual(['rabbit:5671']);
  });

  it('gives an IPv6 address, alone or in a list, as a name without colons that its socket resolves to the address', async () => {
    for (const [url, address, port] of [
      ['amqp://u:p@[::1]:5672', '::1', '5672'],
      ['amqp://u:p@[::1]', '::1', '5672'],
      ['amqp://u:p@[2001:db8::7]:5690/vhost', '2001:db8::7', '5690'],
    ] as const) {
      const target = connectionTarget(url);
      expect(target.hosts).toHaveLength(1);
      const { hostname, port: read } = asClientReads(target.hosts[0] as string);
      expect(read).toBe(port);
      const lookup = target.socket?.lookup as LookupFunction;
      expect(await resolve(lookup, hostname as string, false)).toBe(`${address}/6`);
      expect(await resolve(lookup, hostname as string, true)).toEqual([{ address, family: 6 }]);
    }
  });

  it('mixes IPv6 addresses with names and IPv4 addresses in a list, each node reaching its own host', async () => {
    const target = connectionTarget('amqp://u:p@[::1]:5681,amqp://u:p@localhost:5682,amqp://u:p@127.0.0.1:5683,amqp://u:p@[fe80::2]');
    const nodes = target.hosts.map(asClientReads);
    expect(nodes.map((n) => n.port)).toEqual(['5681', '5682', '5683', '5672']);
    expect(nodes[2]?.hostname).toBe('127.0.0.1');
    expect(nodes[1]?.hostname).toBe('localhost');
    const lookup = target.socket?.lookup as LookupFunction;
    expect(await resolve(lookup, nodes[0]?.hostname as string, false)).toBe('::1/6');
    expect(await resolve(lookup, nodes[3]?.hostname as string, false)).toBe('fe80::2/6');
    // Any other name is still looked up in DNS (here: the hosts file).
    const local = await dns.lookup('localhost');
    expect(await resolve(lookup, 'localhost', false)).toBe(`${local.address}/${local.family}`);
  });

  it('checks the certificate of a TLS node at an IPv6 address against the address, not the name standing in for it', () => {
    const target = connectionTarget('amqps://u:p@[2001:db8::7]:5671');
    const check = (target.tls as { checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined }).checkServerIdentity;
    const name = asClientReads(target.hosts[0] as string).hostname as string;
    const cert = (san: string) => ({ subject: { CN: 'rabbit' }, subjectaltname: san }) as unknown as PeerCertificate;
    expect(check(name, cert('IP Address:2001:DB8:0:0:0:0:0:7'))).toBeUndefined();
    expect(check(name, cert('IP Address:2001:DB8:0:0:0:0:0:8'))).toBeInstanceOf(Error);
    expect(connectionTarget('amqp://u:p@[2001:db8::7]').tls).toBeUndefined();
  });
});
