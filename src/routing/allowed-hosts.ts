import { isIPv4, isIPv6 } from 'node:net';
import { ProxyError } from '../errors.js';

/** The loopback names every listener serves (as they appear in a Host header: IPv6 in brackets). */
export const LOOPBACK_NAMES: readonly string[] = ['localhost', '127.0.0.1', '[::1]'];

/** `allowedHosts: ["*"]`: the check is off (an operator's explicit choice, docs/security.md). */
export const ANY_HOST = '*';

/** Longest Host or Origin value quoted in the operator's log line. */
const MAX_LOGGED = 200;

/**
 * DNS-rebinding protection at the listener (docs/security.md "DNS rebinding"): a browser tricked
 * into sending a request to the proxy (evil.example resolving to 127.0.0.1) still names the
 * attacker's host in `Host` and `Origin`. Only names the listener serves pass: the loopback names,
 * every host route's `match.host`, and `allowedHosts` (exact names or `*.suffix`). A Host that is
 * an IP address passes too: a rebinding attack needs a DNS name, so it never carries one. An
 * `Origin`, when present, must name an allowed host or the Host the request was sent to. Any port:
 * port mappings (`podman -p`, `kubectl port-forward`) change the port the client sees.
 * MCP transports, basic/security_best_practices "Local MCP Server Compromise".
 */
export class HostAllowList {
  readonly #any: boolean;
  readonly #names: ReadonlySet<string>;
  /** `*.example.com` entries as `.example.com`. */
  readonly #suffixes: readonly string[];

  constructor(allowedHosts: readonly string[], routeHosts: Iterable<string>) {
    this.#any = allowedHosts.includes(ANY_HOST);
    const names = new Set<string>(LOOPBACK_NAMES);
    const suffixes: string[] = [];
    for (const entry of allowedHosts) {
      if (entry === ANY_HOST) continue;
      if (entry.startsWith('*.')) suffixes.push(hostnameOf(entry.slice(1)));
      else names.add(hostnameOf(entry));
    }
    for (const host of routeHosts) names.add(hostnameOf(host));
    this.#names = names;
    this.#suffixes = suffixes;
  }

  /** Refuses (403 `host_not_allowed`) a request whose Host or Origin names a host not served here. */
  check(host: string | undefined, origin: string | undefined): void {
    if (this.#any) return;
    // HTTP/1.1 requires Host (Node answers 400 without one); an HTTP/1.0 request may omit it, and a
    // browser never does: nothing to rebind.
    const hostname = host === undefined ? undefined : hostnameOf(host);
    if (hostname !== undefined && !this.#served(hostname) && !isIpLiteral(hostname)) refuse('Host', host);
    if (origin === undefined) return;
    const originHost = originHostname(origin);
    if (originHost === undefined || (!this.#served(originHost) && originHost !== hostname)) refuse('Origin', origin);
  }

  #served(hostname: string): boolean {
    if (this.#names.has(hostname)) return true;
    for (const suffix of this.#suffixes) if (hostname.endsWith(suffix) && hostname.length > suffix.length) return true;
    return false;
  }
}

/** The host name of a Host header value: port removed, lower case, one trailing dot dropped (FQDN). */
export function hostnameOf(host: string): string {
  let name: string;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    name = end === -1 ? host : host.slice(0, end + 1);
  } else {
    const colon = host.indexOf(':');
    name = colon === -1 ? host : host.slice(0, colon);
  }
  name = name.toLowerCase();
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

/**
 * A serialized origin (RFC 6454 §6.2, as browsers send it: scheme, ASCII host, optional port,
 * nothing else). Anything else (`null`, a path, credentials, two Origin headers joined by Node)
 * does not match and is refused.
 */
const SERIALIZED_ORIGIN = /^https?:\/\/([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

/** The host name of an Origin value, or undefined when it is not a serialized http(s) origin. */
function originHostname(origin: string): string | undefined {
  const host = SERIALIZED_ORIGIN.exec(origin)?.[1];
  return host === undefined ? undefined : hostnameOf(host);
}

function isIpLiteral(hostname: string): boolean {
  if (hostname.startsWith('[')) return hostname.endsWith(']') && isIPv6(hostname.slice(1, -1));
  return isIPv4(hostname);
}

function refuse(header: 'Host' | 'Origin', value: string | undefined): never {
  throw new ProxyError('host_not_allowed', 'the Host or Origin header names a host this proxy does not serve', {
    detail: `${header} not allowed: ${JSON.stringify((value ?? '').slice(0, MAX_LOGGED))}`,
  });
}
