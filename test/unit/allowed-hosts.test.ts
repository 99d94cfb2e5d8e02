import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProxyError } from '../../src/errors.js';
import { HostAllowList, hostnameOf } from '../../src/routing/allowed-hosts.js';

const list = new HostAllowList(['proxy.agents.example', '*.pods.example'], ['docs.internal.example']);
const SERVED = ['localhost', '127.0.0.1', '[::1]', 'proxy.agents.example', 'docs.internal.example', 'a.pods.example'];

function refusal(host: string | undefined, origin?: string): string | undefined {
  try {
    list.check(host, origin);
    return undefined;
  } catch (err) {
    return err instanceof ProxyError ? err.code : String(err);
  }
}

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
/** DNS names (at least one dot, a letter in the last label: never an IPv4 address). */
const dnsName = fc
  .tuple(fc.array(label, { minLength: 1, maxLength: 3 }), fc.stringMatching(/^[a-z]{2,6}$/))
  .map(([labels, tld]) => [...labels, tld].join('.'));
const port = fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined });
const withPort = (name: string, p: number | undefined) => (p === undefined ? name : `${name}:${p}`);
const casing = (name: string, upper: boolean) => (upper ? name.toUpperCase() : name);

describe('HostAllowList', () => {
  it('a served name passes as Host and as Origin, in any case, with any port or none', () => {
    fc.assert(
      fc.property(fc.constantFrom(...SERVED), port, port, fc.boolean(), (name, p1, p2, upper) => {
        const host = casing(withPort(name, p1), upper);
        expect(refusal(host)).toBeUndefined();
        expect(refusal(host, `https://${withPort(name, p2)}`)).toBeUndefined();
      }),
    );
  });

  it('any other name is refused, as Host or as Origin', () => {
    fc.assert(
      fc.property(dnsName, port, (name, p) => {
        fc.pre(!SERVED.includes(name) && !name.endsWith('.pods.example'));
        expect(refusal(withPort(name, p))).toBe('host_not_allowed');
        expect(refusal('localhost', `http://${withPort(name, p)}`)).toBe('host_not_allowed');
      }),
    );
  });

  it('an IP address passes as Host; as Origin only when it is that same Host', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.ipV4(), port, (a, b, p) => {
        fc.pre(a !== b && !a.startsWith('127.') && !b.startsWith('127.'));
        expect(refusal(withPort(a, p))).toBeUndefined();
        expect(refusal(withPort(a, p), `http://${a}`)).toBeUndefined();
        expect(refusal(withPort(a, p), `http://${b}`)).toBe('host_not_allowed');
      }),
    );
  });

  it('hostnameOf drops the port and one trailing dot, keeps IPv6 brackets', () => {
    expect(hostnameOf('Example.COM.:8080')).toBe('example.com');
    expect(hostnameOf('[::1]:8080')).toBe('[::1]');
    expect(hostnameOf('[::1]')).toBe('[::1]');
  });

  it('a wildcard needs at least one label before its suffix', () => {
    expect(refusal('pods.example')).toBe('host_not_allowed');
    expect(refusal('.pods.example')).toBe('host_not_allowed');
    expect(refusal('x.y.pods.example')).toBeUndefined();
  });
});
