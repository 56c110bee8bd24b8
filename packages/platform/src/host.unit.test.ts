import { describe, expect, it } from 'vitest';
import { isLoopbackHost, unrebindableHost } from './host.ts';

describe('unrebindableHost', () => {
  it.each([
    '127.0.0.1:8001',
    '127.0.0.1',
    '10.1.2.3:80',
    'localhost:8080',
    'LOCALHOST',
    'shop.localhost:8080',
    '[::1]:8001',
    '[::1]',
    '[2001:db8::1]:443',
    undefined,
  ])('accepts %s', (host) => {
    expect(unrebindableHost(host)).toBe(true);
  });

  it.each([
    'evil.example:8001',
    'evil.example',
    'localhost.evil.example',
    'localhost.',
    '127.0.0.1.evil.example',
    '127.1:8001',
    '[evil.example]:80',
    '::1',
    '127.0.0.1:80:80',
    '',
  ])('refuses %s', (host) => {
    expect(unrebindableHost(host)).toBe(false);
  });
});

describe('isLoopbackHost', () => {
  it.each(['localhost', 'LocalHost', '127.0.0.1', '127.1.2.3', '::1'])('%s is this machine', (host) => {
    expect(isLoopbackHost(host)).toBe(true);
  });

  it.each([
    'rabbit.example.com',
    '10.0.0.1',
    '0.0.0.0',
    '::',
    '2001:db8::1',
    '127.0.0.1.nip.io',
    '127.evil.example',
    'localhost.example.com',
    '[::1]',
  ])('%s may be elsewhere', (host) => {
    expect(isLoopbackHost(host)).toBe(false);
  });
});
