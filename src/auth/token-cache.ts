import { LRUCache } from 'lru-cache';
import { ProxyError } from '../errors.js';
import type { Clock } from '../pipeline/clock.js';

/**
 * A delegated token as kept in the cache. Times are epoch milliseconds. Four fields only: one
 * object per cache entry (docs/token-cache.md: memory per entry).
 */
export interface CachedToken {
  readonly accessToken: string;
  readonly scopes: readonly string[];
  /** Real expiry after every cap (AS expires_in, maxTtlSeconds, subject token exp). */
  readonly expiresAt: number;
  /** From here on a request still gets this token but starts one background exchange. */
  readonly refreshAt: number;
}

export type RefreshTrigger = 'ahead' | 'expired' | 'invalidated';
export type LookupResult = 'hit' | 'miss' | 'coalesced';

/** What one lookup needs to produce a token when the cache has none it may serve. */
export interface TokenLoad {
  /** Runs one exchange. `trigger` says why, when a previous token existed. */
  load(trigger: RefreshTrigger | undefined): Promise<CachedToken>;
  /** A refresh that ran in the background failed; the old token is kept until its expiry. */
  onBackgroundError(error: unknown): void;
}

export interface TokenCacheOptions {
  readonly maxEntries: number;
  /** A token is not served when less than this is left (clock skew toward the upstream). */
  readonly skewMs: number;
  /** Pause after a failed background refresh before the next one is tried. */
  readonly refreshRetryMs?: number;
  readonly clock: Clock;
  /** Errors after which an old token must not be served any longer (e.g. the user was revoked). */
  readonly isFatal?: (error: unknown) => boolean;
  /** Called when a key leaves the cache (evicted, deleted, expired), to keep indexes in step. */
  readonly onRemove?: (key: string) => void;
}

export interface Lookup {
  readonly token: CachedToken;
  readonly result: LookupResult;
}

/**
 * Delegated-token cache (docs/design.md "Cache"). lru-cache keeps the LRU bound and the single flight
 * of `fetch()`. The refresh point is read from the token itself (no lru-cache TTL: that would cost
 * two number slots per entry): past it `fetch()` is forced, which serves the old token at once and
 * runs one background exchange (stale-while-revalidate). On top of that one rule of ours: a token is
 * never served at or after its real expiry (minus skew); such a request waits for the exchange in
 * flight instead.
 */
export class TokenCache {
  readonly #lru: LRUCache<string, CachedToken, TokenLoad>;
  readonly #clock: Clock;
  readonly #skewMs: number;
  readonly #refreshRetryMs: number;
  readonly #isFatal: (error: unknown) => boolean;
  readonly #invalidated = new Set<string>();
  /** Keys whose exchange is running, and those to drop once it ends (see evict). */
  readonly #loading = new Set<string>();
  readonly #dropAfterLoad = new Set<string>();

  constructor(options: TokenCacheOptions) {
    this.#clock = options.clock;
    this.#skewMs = options.skewMs;
    this.#refreshRetryMs = options.refreshRetryMs ?? 5_000;
    this.#isFatal = options.isFatal ?? (() => false);
    this.#lru = new LRUCache<string, CachedToken, TokenLoad>({
      max: options.maxEntries,
      // No ttl: entries never go stale for lru-cache; #due() decides (and `fetch()` gets forceRefresh).
      allowStale: true,
      // An exchange in flight survives the eviction of its entry: the requests waiting for it get
      // its token (docs/operations.md "Reliability": cache pressure costs exchanges, never a request). Other
      // aborts (delete, clear) still fail the waiters: see #load; a revocation's evict() of a key
      // whose exchange runs waits for it to end instead (see evict).
      ignoreFetchAbort: true,
      fetchMethod: (key, stale, { context, signal }) =>
        this.#tracked(key, () => this.#load(key, stale, context, signal)),
      // 'set' replaces the value under the same key: the key stays, so indexes keep it.
      dispose: (_value, key, reason) => {
        if (reason !== 'set') options.onRemove?.(key);
      },
    });
  }

  get size(): number {
    return this.#lru.size;
  }

  /** True while `token` may still be injected into a request. */
  usable(token: CachedToken, now = this.#clock.now()): boolean {
    return now < token.expiresAt - this.#skewMs;
  }

  /** Past the refresh point, and at the latest once the token stops being usable: exchange again. */
  #due(token: CachedToken, now: number): boolean {
    return now >= token.refreshAt || now >= token.expiresAt - this.#skewMs;
  }

  /**
   * The cached token when a lookup would be a plain hit (present, before its refresh point, usable),
   * else undefined. Synchronous, for the hot path: no fetch() bookkeeping, status or promise.
   */
  fresh(key: string): CachedToken | undefined {
    // While an exchange runs, get() gives the old token, which is due (that is why it runs).
    const token = this.#lru.get(key);
    return token !== undefined && !this.#due(token, this.#clock.now()) ? token : undefined;
  }

  async get(key: string, load: TokenLoad): Promise<Lookup> {
    const status: LRUCache.Status<string, CachedToken, TokenLoad> = {};
    const current = this.#lru.peek(key);
    // A due token is still returned at once (allowStale) while one background exchange runs.
    const forceRefresh = current !== undefined && this.#due(current, this.#clock.now());
    const token = await this.#lru.fetch(key, { context: load, status, forceRefresh });
    if (token !== undefined && this.usable(token)) {
      const result: LookupResult =
        status.fetch === 'miss' ? 'miss' : status.fetch === 'inflight' && !status.returnedStale ? 'coalesced' : 'hit';
      return { token, result };
    }
    // The old token is past its expiry: wait for the exchange in flight, or start one.
    const startedHere = status.fetch !== 'inflight';
    const fresh = await this.#lru.fetch(key, { context: load, allowStale: false, forceRefresh: true });
    if (fresh === undefined || !this.usable(fresh)) {
      // Only when a refresh that began while the token was valid ended after its expiry.
      throw new ProxyError('temporarily_unavailable', 'the delegated token could not be renewed in time', {
        retryAfterSeconds: 1,
      });
    }
    return { token: fresh, result: startedHere ? 'miss' : 'coalesced' };
  }

  /** Drops an entry that the upstream refused; the next lookup exchanges with trigger `invalidated`. */
  invalidate(key: string, token: CachedToken): void {
    const current = this.#lru.peek(key);
    // The same token string, not object: a failed background refresh re-stores the old token with a
    // later refresh point (see #load).
    if (current !== undefined && current.accessToken === token.accessToken) {
      this.#lru.delete(key);
      if (this.#invalidated.size < this.#lru.max) this.#invalidated.add(key);
    }
  }

  /** True while the cache holds an entry (fresh or stale) for `key`. */
  has(key: string): boolean {
    return this.#lru.peek(key) !== undefined;
  }

  /**
   * Drops an entry whatever its token (revocation); true when there was one. While its exchange
   * runs, deleting would abort it and fail the requests waiting for it (lru-cache rejects them):
   * those are in flight, so they get its token, and the entry is dropped right after.
   */
  evict(key: string): boolean {
    this.#invalidated.delete(key);
    if (this.#loading.has(key)) {
      this.#dropAfterLoad.add(key);
      return true;
    }
    return this.#lru.delete(key);
  }

  /** Removes every entry past its real expiry; returns how many. */
  sweep(): number {
    const now = this.#clock.now();
    const expired: string[] = [];
    for (const [key, token] of this.#lru.entries()) if (!this.usable(token, now)) expired.push(key);
    for (const key of expired) this.#lru.delete(key);
    return expired.length;
  }

  clear(): void {
    this.#lru.clear();
    this.#invalidated.clear();
  }

  /** Runs one exchange for `key`, noting that it runs (see evict). */
  async #tracked(key: string, run: () => Promise<CachedToken>): Promise<CachedToken> {
    this.#loading.add(key);
    try {
      return await run();
    } finally {
      this.#loading.delete(key);
      // After lru-cache has stored the result and the waiting requests have it (next macrotask).
      if (this.#dropAfterLoad.delete(key)) setImmediate(() => this.#loading.has(key) || this.#lru.delete(key));
    }
  }

  async #load(key: string, stale: CachedToken | undefined, load: TokenLoad, signal: AbortSignal): Promise<CachedToken> {
    const now = this.#clock.now();
    let trigger: RefreshTrigger | undefined;
    if (this.#invalidated.delete(key)) trigger = 'invalidated';
    else if (stale !== undefined) trigger = this.usable(stale, now) ? 'ahead' : 'expired';
    try {
      return await untilRemoved(load.load(trigger), signal);
    } catch (err) {
      const after = this.#clock.now();
      if (stale !== undefined && this.usable(stale, after) && !this.#isFatal(err)) {
        // Keep serving the still-valid token, and back off so an AS outage is not hammered: the
        // next refresh is due after refreshRetryMs (or once the token stops being usable).
        load.onBackgroundError(err);
        const left = stale.expiresAt - this.#skewMs - after;
        return {
          accessToken: stale.accessToken,
          scopes: stale.scopes,
          expiresAt: stale.expiresAt,
          refreshAt: after + Math.min(this.#refreshRetryMs, left),
        };
      }
      throw err;
    }
  }
}

/**
 * lru-cache aborts a pending fetch with this reason when the size bound evicts its entry; any other
 * reason means the entry was deleted or the cache cleared on purpose.
 */
const EVICTED = 'evicted';

/** The exchange's result, unless the entry is deleted on purpose first (then that abort's reason). */
function untilRemoved<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      const reason: unknown = signal.reason;
      if (!(reason instanceof Error && reason.message === EVICTED)) reject(reason);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Lifetime rule (docs/design.md "Cache"): min(expires_in, maxTtl, subject exp - now); refresh point inside it. */
export function tokenTimes(input: {
  now: number;
  expiresInSeconds: number | undefined;
  maxTtlSeconds: number;
  subjectExpiresAt: number | undefined;
  refreshAheadSeconds: number;
}): { expiresAt: number; refreshAt: number; capped: boolean; cappedBySubject: boolean } {
  const { now, maxTtlSeconds } = input;
  const issued = input.expiresInSeconds ?? maxTtlSeconds;
  let expiresAt = now + Math.min(issued, maxTtlSeconds) * 1000;
  const capped = issued > maxTtlSeconds;
  let cappedBySubject = false;
  if (input.subjectExpiresAt !== undefined && input.subjectExpiresAt < expiresAt) {
    expiresAt = input.subjectExpiresAt;
    cappedBySubject = true;
  }
  const lifetime = Math.max(0, expiresAt - now);
  // A token bounded by the user's own token cannot be renewed past it: no refresh ahead then.
  // Nor when the AS already bounded it to about the user's exp (a renewal would gain nothing).
  const boundedBySubject =
    cappedBySubject ||
    (input.subjectExpiresAt !== undefined && input.subjectExpiresAt - expiresAt < input.refreshAheadSeconds * 1000);
  const ahead = boundedBySubject ? 0 : Math.min(input.refreshAheadSeconds * 1000, lifetime / 2);
  return { expiresAt, refreshAt: expiresAt - ahead, capped, cappedBySubject };
}
