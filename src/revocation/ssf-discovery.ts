import type { Dispatcher } from 'undici';
import { boundedGet } from '../auth/bounded-get.js';

/**
 * SSF 1.0 §7.1: the transmitter metadata lives at the issuer with `/.well-known/ssf-configuration`
 * inserted between the host and the path (`https://idp/t1` → `https://idp/.well-known/ssf-configuration/t1`).
 */
export function ssfConfigurationUrl(issuer: string): string {
  const u = new URL(issuer);
  const path = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '');
  return `${u.origin}/.well-known/ssf-configuration${path}`;
}

/**
 * Reads the transmitter's `jwks_uri` from its SSF configuration. The document's `issuer` must be
 * the configured one (as RFC 8414 §3.3 requires for its metadata), so a metadata answer cannot
 * point the proxy at someone else's keys.
 */
export async function discoverSsfJwksUri(
  issuer: string,
  options: { dispatcher: Dispatcher; timeoutMs: number },
): Promise<string> {
  const url = ssfConfigurationUrl(issuer);
  const res = await boundedGet(url, options);
  if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
  let doc: unknown;
  try {
    doc = JSON.parse(res.text);
  } catch {
    throw new Error(`${url} did not answer JSON`);
  }
  const meta = doc !== null && typeof doc === 'object' ? (doc as Record<string, unknown>) : {};
  if (meta.issuer !== issuer) throw new Error(`${url}: issuer ${JSON.stringify(meta.issuer)} is not ${issuer}`);
  const jwksUri = meta.jwks_uri;
  if (typeof jwksUri !== 'string' || !/^https?:\/\//.test(jwksUri) || !URL.canParse(jwksUri)) {
    throw new Error(`${url}: no usable jwks_uri`);
  }
  return jwksUri;
}
