import { hash } from 'node:crypto';
import type { Logger } from 'pino';
import { ProxyError, TokenExchangeError } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import type { RouteChildren } from '../observability/route-metrics.js';
import type { Clock } from '../pipeline/clock.js';
import type { Route } from '../routing/route-table.js';
import type { ActorTokenSource } from './actor-token.js';
import { peekJwtClaims } from './jwt-claims.js';
import { SubjectIndex } from './subject-index.js';
import { type CachedToken, type LookupResult, type RefreshTrigger, TokenCache, tokenTimes } from './token-cache.js';
import type { ExchangeRequest, IssuedToken, TokenExchangeClient } from './token-exchange.js';

/** Distinct exchange-parameter sets given a short id (routes x policy-added scope sets). */
const MAX_PARAM_IDS = 10_000;

export interface CacheSettings {
  readonly refreshAheadSeconds: number;
  readonly maxTtlSeconds: number;
  readonly maxEntries: number;
  readonly clockSkewSeconds: number;
}

export interface TokenServiceOptions {
  readonly client: TokenExchangeClient;
  readonly cache: CacheSettings;
  readonly subjectTokenType: string;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly actor?: ActorTokenSource | undefined;
  /** Checks an issued token before it is ever used (issue-time policy); throws to reject it. */
  readonly checkIssued?: (issued: IssuedToken, request: ExchangeRequest, subject: SubjectInfo) => void;
  /**
   * The authorization server a route names (docs/cross-domain.md); undefined = `client` and
   * `checkIssued` above. Throws for a name the running config lacks (added by a reload: restart).
   */
  readonly serverFor?: (route: Route) => ExchangeServer | undefined;
  /** Per-route label children made once per route object (observability/route-metrics.ts), shared with the pipeline. */
  readonly routeMetrics: (route: Route) => RouteChildren;
}

export interface ExchangeServer {
  readonly client: TokenExchangeClient;
  readonly checkIssued?: (issued: IssuedToken, request: ExchangeRequest, subject: SubjectInfo) => void;
}

export interface SubjectInfo {
  readonly token: string;
  /** SHA-256 (base64url) of the token; the only form in which a subject token is ever kept. */
  readonly hash: string;
  /** `sub` when the token is a JWT (decoded, not verified: for logs only). */
  readonly sub: string | undefined;
  /** `exp` in epoch ms when the token is a JWT: delegated tokens never outlive it. */
  readonly expiresAt: number | undefined;
  /** `iss`, `iat` (epoch seconds) and `email` when the token is a JWT: for revocation (docs/revocation.md). */
  readonly iss?: string | undefined;
  readonly iat?: number | undefined;
  readonly email?: string | undefined;
}

/** The describe() memo of a JWT user token: its claims and the one hash string its cache keys share. */
type KnownSubject = Omit<SubjectInfo, 'token'>;

export interface TokenRequest {
  readonly route: Route;
  readonly subject: SubjectInfo;
  /** Sorted, de-duplicated: the route's scopes plus any the policy added for this call. */
  readonly scopes: readonly string[];
  readonly log: Logger;
  /** false: exchange for this call only, never cached nor shared (step-up). */
  readonly cacheable: boolean;
}

export interface ObtainedToken {
  readonly token: CachedToken;
  readonly result: LookupResult | 'bypass';
  /** Cache key, to invalidate the entry if the upstream refuses the token. */
  readonly key: string;
}

export function describeSubject(token: string, tokenHash = hash('sha256', token, 'base64url')): SubjectInfo {
  const claims = peekJwtClaims(token);
  return {
    token,
    hash: tokenHash,
    sub: typeof claims?.sub === 'string' ? claims.sub : undefined,
    expiresAt: typeof claims?.exp === 'number' ? claims.exp * 1000 : undefined,
    iss: typeof claims?.iss === 'string' ? claims.iss : undefined,
    iat: typeof claims?.iat === 'number' ? claims.iat : undefined,
    email: typeof claims?.email === 'string' ? claims.email : undefined,
  };
}

/**
 * Gets a delegated token for one request: from the cache, or by one RFC 8693 exchange per key.
 * Records the exchange metrics and the audit event for every exchange.
 */
export class TokenService {
  readonly cache: TokenCache;
  /** Cache keys by user, for revocation (docs/revocation.md). */
  readonly subjectIndex = new SubjectIndex();
  readonly #o: TokenServiceOptions;
  /**
   * The describe() memo, bounded like the cache and dropping the oldest first: a plain Map grows
   * with its users, where lru-cache would allocate its slot arrays for maxEntries at once.
   */
  readonly #subjects = new Map<string, KnownSubject>();
  readonly #routeParams = new WeakMap<Route, string>();
  /**
   * The key suffix per route and scope list (by identity): the route's own list, or a list the MCP
   * policy hands out as the same frozen array for the same call every time. A list made afresh per
   * request misses and is collected with its entry (weakly held).
   */
  readonly #suffixes = new WeakMap<
    Route,
    WeakMap<readonly string[], { readonly actorHash: string; readonly suffix: string }>
  >();
  readonly #paramIds = new Map<string, string>();
  /** Per-route label children (the cache-hit counter), shared with the pipeline. */
  readonly #routeMetrics: (route: Route) => RouteChildren;

  constructor(options: TokenServiceOptions) {
    this.#o = options;
    this.#routeMetrics = options.routeMetrics;
    this.cache = new TokenCache({
      maxEntries: options.cache.maxEntries,
      skewMs: options.cache.clockSkewSeconds * 1000,
      clock: options.clock,
      isFatal: (err) => err instanceof TokenExchangeError && err.outcome === 'invalid_grant',
      onRemove: (key) => this.subjectIndex.remove(key),
    });
  }

  /**
   * describeSubject, with the decoded `sub`/`exp` of a JWT remembered per token hash (never per raw
   * token): a returning user costs one SHA-256, not a JWT decode, per request. The remembered hash
   * string is the one returned, so all of the user's cache keys point to one copy of it.
   */
  describe(token: string): SubjectInfo {
    const tokenHash = hash('sha256', token, 'base64url');
    const known = this.#subjects.get(tokenHash);
    // Spelled out, not spread: one object of a fixed shape per request.
    if (known !== undefined)
      return {
        token,
        hash: known.hash,
        sub: known.sub,
        expiresAt: known.expiresAt,
        iss: known.iss,
        iat: known.iat,
        email: known.email,
      };
    // An opaque token has nothing to decode: finding no JWT in it again costs less than a memo entry.
    if (!jwtShaped(token))
      return {
        token,
        hash: tokenHash,
        sub: undefined,
        expiresAt: undefined,
        iss: undefined,
        iat: undefined,
        email: undefined,
      };
    const info = describeSubject(token, tokenHash);
    this.#remember({
      hash: tokenHash,
      sub: info.sub,
      expiresAt: info.expiresAt,
      iss: info.iss,
      iat: info.iat,
      email: info.email,
    });
    return info;
  }

  #remember(known: KnownSubject): void {
    if (this.#subjects.size >= this.#o.cache.maxEntries) {
      // The oldest first (insertion order): a user dropped while still active costs one JWT decode.
      const oldest = this.#subjects.keys().next();
      if (oldest.done !== true) this.#subjects.delete(oldest.value);
    }
    this.#subjects.set(known.hash, known);
  }

  /**
   * A short id per distinct set of exchange parameters: routes with equal parameters share it, and so
   * cache entries. Short ids keep every cache key (one per user and parameter set) small.
   */
  #paramsId(route: Route, scopes: readonly string[]): string {
    const known = scopes === route.scopes ? this.#routeParams.get(route) : undefined;
    if (known !== undefined) return known;
    // The subject token type is part of it: a reload that changes it must not reuse old tokens
    // (a reload also makes new Route objects, so the per-route memo above is fresh then).
    const params = JSON.stringify([
      scopes,
      route.audience ?? null,
      route.resource ?? null,
      route.requestedTokenType,
      route.config.subjectToken?.type ?? this.#o.subjectTokenType,
      // Another authorization server issues another token: never shared across servers.
      route.config.authorizationServer ?? null,
      route.config.grant ?? null,
      route.config.resourceAuthorizationServer ?? null,
    ]);
    let id = this.#paramIds.get(params);
    if (id === undefined) {
      // Bounded: past the cap the parameters themselves are the id ('[' never starts a short id).
      id = this.#paramIds.size < MAX_PARAM_IDS ? `#${this.#paramIds.size.toString(36)}` : params;
      if (id !== params) this.#paramIds.set(params, id);
    }
    if (scopes === route.scopes) this.#routeParams.set(route, id);
    return id;
  }

  /**
   * The hot path (docs/token-cache.md): a plain hit, without a promise, a closure or an exchange
   * request; undefined when `obtain()` has to run (miss, refresh due, expired user token).
   */
  cached(route: Route, subject: SubjectInfo, scopes: readonly string[]): ObtainedToken | undefined {
    if (this.#subjectExpired(subject)) return undefined;
    return this.#fresh(route, this.#keyFor(route, subject, scopes, this.#o.actor?.current()));
  }

  /** The cached token under `key` while it is before its refresh point, counted as a hit. */
  #fresh(route: Route, key: string): ObtainedToken | undefined {
    const token = this.cache.fresh(key);
    if (token === undefined) return undefined;
    this.#routeMetrics(route).cacheHits.inc();
    return { token, result: 'hit', key };
  }

  async obtain(req: TokenRequest): Promise<ObtainedToken> {
    if (this.#subjectExpired(req.subject)) {
      // Nothing delegated may outlive the user's token: no exchange for one about to expire.
      throw new ProxyError('invalid_token', 'the user token has expired', {
        detail: 'subject token exp is within the clock skew',
      });
    }
    const actor = this.#o.actor?.current();
    const requestKey = this.#keyFor(req.route, req.subject, req.scopes, actor);
    // The key an entry keeps (and the index, and ObtainedToken): the request's two-part key when the
    // memo keeps its first part (the subject hash) anyway, else one flat copy, smaller than both parts.
    const key = !req.cacheable || this.#subjects.has(req.subject.hash) ? requestKey : flatCopy(requestKey);
    const { metrics } = this.#o;
    const route = req.route.name;
    if (req.cacheable) {
      // The key and the expiry check above are this call's: not computed again by cached().
      const hit = this.#fresh(req.route, key);
      if (hit !== undefined) return hit;
    }
    const exchangeRequest: ExchangeRequest = {
      subjectToken: req.subject.token,
      subjectTokenType: req.route.config.subjectToken?.type ?? this.#o.subjectTokenType,
      requestedTokenType: req.route.requestedTokenType,
      scopes: req.scopes,
      audience: req.route.audience,
      resource: req.route.resource,
      actorToken: actor?.token,
      actorTokenType: actor?.type,
    };
    if (!req.cacheable) {
      const token = await this.#exchange(req, exchangeRequest, actor !== undefined);
      return { token, result: 'bypass', key };
    }
    // Indexed before the exchange, so a revocation during it finds (and drops) its result. The
    // claims memo, when there is one, is what the index keeps (one object per user, no token in it).
    const indexed = this.#subjects.get(req.subject.hash) ?? req.subject;
    this.subjectIndex.add(key, indexed);
    let lookup: Awaited<ReturnType<TokenCache['get']>>;
    try {
      lookup = await this.cache.get(key, {
        load: (trigger: RefreshTrigger | undefined) => {
          if (trigger !== undefined) metrics.tokenRefreshes.inc({ route, trigger });
          return this.#exchange(req, exchangeRequest, actor !== undefined);
        },
        onBackgroundError: (err) => {
          req.log.warn(
            { err: describeError(err), route },
            'background token refresh failed; keeping the current token',
          );
        },
      });
    } catch (err) {
      if (!this.cache.has(key)) this.subjectIndex.remove(key); // nothing was stored
      throw err;
    }
    metrics.tokenCacheLookups.inc({ route, result: lookup.result });
    // Only while the entry is there: it may have been evicted since the fetch settled.
    if (this.cache.has(key)) this.subjectIndex.add(key, indexed);
    return { token: lookup.token, result: lookup.result, key };
  }

  #subjectExpired(subject: SubjectInfo): boolean {
    const exp = subject.expiresAt;
    return exp !== undefined && exp - this.#o.cache.clockSkewSeconds * 1000 <= this.#o.clock.now();
  }

  /** `hash \n actorHash \n paramsId`, made per request as one two-part string (the suffix is kept per route and scope list). */
  #keyFor(
    route: Route,
    subject: SubjectInfo,
    scopes: readonly string[],
    actor: { readonly hash: string } | undefined,
  ): string {
    const actorHash = actor?.hash ?? '';
    let byScopes = this.#suffixes.get(route);
    if (byScopes === undefined) {
      byScopes = new WeakMap();
      this.#suffixes.set(route, byScopes);
    }
    let known = byScopes.get(scopes);
    if (known === undefined || known.actorHash !== actorHash) {
      known = { actorHash, suffix: `\n${actorHash}\n${this.#paramsId(route, scopes)}` };
      byScopes.set(scopes, known);
    }
    return subject.hash + known.suffix;
  }

  async #exchange(req: TokenRequest, exchangeRequest: ExchangeRequest, hasActor: boolean): Promise<CachedToken> {
    const { metrics, clock, cache } = this.#o;
    const route = req.route.name;
    const audit = {
      audit: 'token_exchange',
      sub: req.subject.sub,
      actor: hasActor ? this.#actorSub() : undefined,
      requestedScopes: exchangeRequest.scopes,
      audience: exchangeRequest.audience,
      resource: exchangeRequest.resource,
    };
    const started = performance.now();
    let issued: IssuedToken;
    try {
      const server = this.#o.serverFor?.(req.route) ?? this.#o;
      issued = await server.client.exchange(exchangeRequest);
      server.checkIssued?.(issued, exchangeRequest, req.subject);
    } catch (err) {
      const outcome = err instanceof TokenExchangeError ? err.outcome : 'error';
      metrics.tokenExchanges.inc({ route, outcome });
      metrics.tokenExchangeDuration.observe({ route }, (performance.now() - started) / 1000);
      req.log.info(
        { ...audit, outcome, detail: err instanceof ProxyError ? err.detail : String(err) },
        'token exchange failed',
      );
      throw err;
    }
    const now = clock.now();
    metrics.tokenExchangeDuration.observe({ route }, (performance.now() - started) / 1000);
    const times = tokenTimes({
      now,
      expiresInSeconds: issued.expiresIn,
      maxTtlSeconds: cache.maxTtlSeconds,
      subjectExpiresAt: req.subject.expiresAt,
      refreshAheadSeconds: cache.refreshAheadSeconds,
    });
    const lifetimeSeconds = (times.expiresAt - now) / 1000;
    if (times.expiresAt - cache.clockSkewSeconds * 1000 <= now) {
      metrics.tokenExchanges.inc({ route, outcome: 'rejected' });
      req.log.info({ ...audit, outcome: 'rejected', lifetimeSeconds }, 'token exchange failed');
      throw new TokenExchangeError('invalid_token', 'the user token expires too soon to delegate', 'rejected', {
        detail: `usable lifetime ${lifetimeSeconds}s is within the clock skew`,
      });
    }
    metrics.tokenExchanges.inc({ route, outcome: 'success' });
    metrics.tokenTtl.observe({ route }, lifetimeSeconds);
    if (times.capped) metrics.tokenTtlCapped.inc({ route });
    const jti = peekJwtClaims(issued.accessToken)?.jti;
    req.log.info(
      {
        ...audit,
        outcome: 'success',
        grantedScopes: issued.scopes,
        lifetimeSeconds,
        capped: times.capped || times.cappedBySubject,
        jti: typeof jti === 'string' ? jti : undefined,
      },
      'token exchanged',
    );
    return {
      accessToken: issued.accessToken,
      // One shared array when the AS granted what was asked (the usual case): less memory per entry.
      scopes: sameScopes(issued.scopes, exchangeRequest.scopes) ? exchangeRequest.scopes : issued.scopes,
      expiresAt: times.expiresAt,
      refreshAt: times.refreshAt,
    };
  }

  #actorSub(): string | undefined {
    const token = this.#o.actor?.current()?.token;
    const sub = token === undefined ? undefined : peekJwtClaims(token)?.sub;
    return typeof sub === 'string' ? sub : undefined;
  }
}

/** Two dots, as in a JWS compact serialization (RFC 7515 §7.1): what peekJwtClaims would try to decode. */
function jwtShaped(token: string): boolean {
  const first = token.indexOf('.');
  const second = first === -1 ? -1 : token.indexOf('.', first + 1);
  return second !== -1 && token.indexOf('.', second + 1) === -1;
}

/**
 * The same characters in one flat string: V8 keeps `a + b` as a two-part string that holds both
 * parts (here the 43-character subject hash and the suffix) for as long as the result lives.
 */
function flatCopy(text: string): string {
  return JSON.parse(JSON.stringify(text)) as string;
}

function sameScopes(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

function describeError(err: unknown): { code?: string; message: string; detail?: string } {
  if (err instanceof ProxyError)
    return { code: err.code, message: err.message, ...(err.detail ? { detail: err.detail } : {}) };
  return { message: err instanceof Error ? err.message : String(err) };
}
