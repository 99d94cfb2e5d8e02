import { createRemoteJWKSet, customFetch } from 'jose/jwks/remote';
import type { Dispatcher } from 'undici';
import { boundedGet } from './bounded-get.js';

export type RemoteKeySet = ReturnType<typeof createRemoteJWKSet>;

export interface RemoteKeySetOptions {
  readonly dispatcher: Dispatcher;
  readonly timeoutMs: number;
  /** Told the HTTP status of every key-set fetch (readiness). */
  readonly onFetched?: ((status: number) => void) | undefined;
}

/**
 * jose's remote JWKS (cached, one pending fetch, refetched on an unknown `kid` after a cooldown)
 * for the URL in force, made again when the URL changes (discovery may move it). Fetches go through
 * the injected dispatcher with a bounded body and a timeout (docs/design.md "Code rules").
 */
export function remoteKeySets(options: RemoteKeySetOptions): (url: string) => RemoteKeySet {
  let remote: { url: string; set: RemoteKeySet } | undefined;
  const fetchImpl = async (url: string, init: { signal: AbortSignal }): Promise<Response> => {
    const res = await boundedGet(url, {
      dispatcher: options.dispatcher,
      timeoutMs: options.timeoutMs,
      signal: init.signal,
    });
    options.onFetched?.(res.status);
    return new Response(res.text, { status: res.status, headers: { 'content-type': 'application/json' } });
  };
  return (url) => {
    if (remote?.url !== url) {
      remote = {
        url,
        set: createRemoteJWKSet(new URL(url), {
          timeoutDuration: options.timeoutMs,
          cooldownDuration: 30_000,
          cacheMaxAge: 10 * 60_000,
          [customFetch]: fetchImpl,
        }),
      };
    }
    return remote.set;
  };
}
