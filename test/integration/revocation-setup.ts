import { request } from 'undici';
import type { ProxyDeps } from '../../src/app.js';
import type { useClosers } from '../helpers/closers.js';
import { ADMIN_TOKEN, AUDIENCE, revocationConfig, SSF_AUTHORIZATION } from '../helpers/revocation-config.js';
import { startTransmitter, type Transmitter } from '../helpers/ssf-transmitter.js';
import { startAs, type TestAuthorizationServer } from '../helpers/start-as.js';
import { startProxy, type TestProxy } from '../helpers/start-proxy.js';
import { startUpstream, type TestUpstream } from '../helpers/start-upstream.js';

export { ADMIN_TOKEN, AUDIENCE, SSF_AUTHORIZATION } from '../helpers/revocation-config.js';

export interface RevocationSetup {
  readonly as: TestAuthorizationServer;
  readonly upstream: TestUpstream;
  readonly tx: Transmitter;
  readonly proxy: TestProxy;
}

/** Real AS, upstream, SSF transmitter and proxy with `revocation` configured (or not: `revocation: false`). */
export async function setupRevocation(
  closers: ReturnType<typeof useClosers>,
  options: {
    revocation?: false | Record<string, unknown>;
    /** Overrides of `revocation.ssf`; a function gets the transmitter (for its poll URL). */
    ssf?: Record<string, unknown> | ((tx: Transmitter) => Record<string, unknown>);
    deps?: Partial<ProxyDeps>;
  } = {},
): Promise<RevocationSetup> {
  const as = await startAs();
  closers.push(() => as.close());
  const upstream = await startUpstream();
  closers.push(() => upstream.close());
  const tx = await startTransmitter({ audience: AUDIENCE, pollAuthorization: SSF_AUTHORIZATION });
  closers.push(() => tx.close());
  const revocation =
    options.revocation === false
      ? undefined
      : {
          ...revocationConfig(tx, 'dp-revocation-', typeof options.ssf === 'function' ? options.ssf(tx) : options.ssf)
            .revocation,
          ...options.revocation,
        };
  const proxy = await startProxy({
    as,
    config: {
      ...(revocation ? { revocation } : {}),
      routes: [{ name: 'docs', match: { pathPrefix: '/docs' }, upstream: upstream.url, scopes: ['documents:read'] }],
    },
    ...(options.deps ? { deps: options.deps } : {}),
  });
  closers.push(() => proxy.close());
  return { as, upstream, tx, proxy };
}

export async function call(
  url: string,
  token: string,
): Promise<{ status: number; body: string; challenge: string | undefined }> {
  const res = await request(url, { headers: { authorization: `Bearer ${token}` } });
  const challenge = res.headers['www-authenticate'];
  return {
    status: res.statusCode,
    body: await res.body.text(),
    challenge: typeof challenge === 'string' ? challenge : undefined,
  };
}

export async function admin(
  adminUrl: string,
  method: 'GET' | 'POST' | 'DELETE',
  body?: unknown,
  /** null: no Authorization header. */
  token: string | null = ADMIN_TOKEN,
): Promise<{ status: number; json: unknown }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const res = await request(`${adminUrl}/revocations`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.body.text();
  return { status: res.statusCode, json: text === '' ? undefined : JSON.parse(text) };
}

/** Waits until the wall clock is in a later second than `ms` (user tokens carry `iat` in whole seconds). */
export async function nextSecondAfter(ms: number): Promise<void> {
  const target = (Math.floor(ms / 1000) + 1) * 1000;
  while (Date.now() < target) await new Promise((r) => setTimeout(r, Math.min(50, target - Date.now() + 1)));
}

export async function metricsText(adminUrl: string): Promise<string> {
  return (await request(`${adminUrl}/metrics`)).body.text();
}
