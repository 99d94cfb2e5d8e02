import type { IncomingHttpHeaders } from 'node:http';
import { cookiePairs } from '../http/cookies.js';
import type { Route } from '../routing/route-table.js';

/** Headers and cookies that could carry the user's credentials and must never reach the upstream. */
export interface CredentialStrip {
  /** Lower-case header names. */
  readonly headers: readonly string[];
  /** Cookie names (case-sensitive, RFC 6265 §5.4). */
  readonly cookies: ReadonlySet<string>;
}

export interface StripConfig {
  readonly stripHeaders: readonly string[];
  readonly stripCookies: readonly string[];
}

const compiled = new WeakMap<Route, CredentialStrip>();

/** The global lists plus the route's own, compiled once per route object (a reload makes new ones). */
export function credentialStripFor(route: Route, global: StripConfig): CredentialStrip {
  let strip = compiled.get(route);
  if (strip === undefined) {
    const own = route.config as Partial<StripConfig>;
    strip = Object.freeze({
      headers: [...new Set([...global.stripHeaders, ...(own.stripHeaders ?? [])])],
      cookies: new Set([...global.stripCookies, ...(own.stripCookies ?? [])]),
    });
    compiled.set(route, strip);
  }
  return strip;
}

/**
 * Removes the configured headers and cookies from the request (docs/design.md "Request pipeline" step 3: only the delegated
 * token may leave). Cookies not named are kept in their order.
 */
export function stripCredentials(headers: IncomingHttpHeaders, strip: CredentialStrip): void {
  for (const name of strip.headers) delete headers[name];
  if (strip.cookies.size === 0) return;
  const cookie = headers.cookie;
  if (cookie === undefined) return;
  const kept = cookiePairs(cookie).filter((pair) => !strip.cookies.has(pair.name));
  if (kept.length === 0) delete headers.cookie;
  else headers.cookie = kept.map((pair) => pair.text).join('; ');
}
