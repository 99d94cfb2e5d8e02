import { decodeJwt } from 'jose';
import { Agent, request } from 'undici';
import type { useClosers } from '../helpers/closers.js';
import { startAs, type TestAuthorizationServer } from '../helpers/start-as.js';
import { startProxy, type TestProxy } from '../helpers/start-proxy.js';
import { startUpstream, type TestUpstream } from '../helpers/start-upstream.js';

export const SCOPE = 'documents:read';

export interface Rig {
  readonly as: TestAuthorizationServer;
  readonly upstream: TestUpstream;
  readonly proxy: TestProxy;
  /** A client with its own connection pool (no limit), closed with the rig. */
  readonly client: Agent;
}

/**
 * The real AS, a recording upstream and the real proxy with one route `/documents` → upstream,
 * scope documents:read. `config` is merged over the route config (as in YAML).
 */
export async function startRig(
  closers: ReturnType<typeof useClosers>,
  options: {
    config?: Record<string, unknown>;
    asDelayMs?: number;
    upstream?: Parameters<typeof startUpstream>[0];
    /** Extra routes, given the upstream's URL. */
    routes?: (upstreamUrl: string) => Record<string, unknown>[];
  } = {},
): Promise<Rig> {
  const as = await startAs(options.asDelayMs === undefined ? {} : { delayMs: options.asDelayMs });
  closers.push(() => as.close());
  const upstream = await startUpstream(options.upstream);
  closers.push(() => upstream.close());
  const routes = [
    {
      name: 'documents',
      match: { pathPrefix: '/documents' },
      upstream: `${upstream.url}/api`,
      stripPrefix: true,
      scopes: [SCOPE],
      audience: 'https://docs.internal',
    },
    ...(options.routes?.(upstream.url) ?? []),
  ];
  const proxy = await startProxy({ as, config: { routes, ...options.config } });
  closers.push(() => proxy.close());
  const client = new Agent({ connections: null, keepAliveTimeout: 1_000 });
  closers.push(() => client.close());
  return { as, upstream, proxy, client };
}

/** User tokens for `n` distinct users `user-0` … `user-(n-1)`. */
export function userTokens(as: TestAuthorizationServer, n: number, prefix = 'user'): Promise<string[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => as.userToken(`${prefix}-${i}`, [SCOPE])));
}

export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
}

export async function get(
  rig: Rig,
  path: string,
  token: string | undefined,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const res = await request(`${rig.proxy.url}${path}`, {
    dispatcher: rig.client,
    headers: { ...headers, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

/** Counts of each status, e.g. `{ 200: 198, 503: 2 }`. */
export function tally(answers: readonly Answer[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const a of answers) out[a.status] = (out[a.status] ?? 0) + 1;
  return out;
}

/** `sub` of the delegated token the upstream received in request `i`, or undefined. */
export function upstreamSub(upstream: TestUpstream, i: number): string | undefined {
  const auth = upstream.requests[i]?.headers.authorization;
  if (auth === undefined || !auth.startsWith('Bearer ')) return undefined;
  return decodeJwt(auth.slice('Bearer '.length)).sub;
}

/** Exchanges the AS received per subject (`sub` claim of the subject token). */
export function exchangesPerUser(as: TestAuthorizationServer): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of as.exchanges) {
    const token = e.params.subject_token;
    const sub = token === undefined ? '?' : String(decodeJwt(token).sub);
    out.set(sub, (out.get(sub) ?? 0) + 1);
  }
  return out;
}
