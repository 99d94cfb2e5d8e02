import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { TokenExchangeError } from '../errors.js';
import { boundedGet } from './bounded-get.js';

/** What the proxy takes from the authorization server's metadata. */
export interface AuthorizationServerMetadata {
  readonly issuer: string;
  readonly tokenEndpoint: string;
  readonly jwksUri: string | undefined;
  /** The URL the document came from. */
  readonly source: string;
}

/** Discovery failed: why, for readiness and logs (no secrets in it). */
export class DiscoveryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DiscoveryError';
  }
}

/**
 * Where to look, in order: RFC 8414 §3.1 (the well-known segment goes between host and path, any
 * trailing `/` of the issuer removed), then OpenID Connect Discovery 1.0 §4 (appended to the issuer).
 */
export function metadataUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/+$/, '');
  return [
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
    `${url.origin}${path}/.well-known/openid-configuration`,
  ];
}

function isHttpUrl(value: unknown): value is string {
  if (typeof value !== 'string' || !URL.canParse(value)) return false;
  const u = new URL(value);
  return (u.protocol === 'https:' || u.protocol === 'http:') && u.hash === '' && u.username === '' && u.password === '';
}

/** Validates one metadata document; the issuer must match exactly (RFC 8414 §3.3, OIDC Discovery §4.3). */
export function parseMetadata(issuer: string, source: string, text: string): AuthorizationServerMetadata {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new DiscoveryError(`${source}: not JSON`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
    throw new DiscoveryError(`${source}: not a JSON object`);
  const m = doc as Record<string, unknown>;
  if (m.issuer !== issuer) {
    throw new DiscoveryError(
      `${source}: issuer ${JSON.stringify(m.issuer)} does not match the configured ${JSON.stringify(issuer)}`,
    );
  }
  if (!isHttpUrl(m.token_endpoint)) throw new DiscoveryError(`${source}: token_endpoint missing or not an http(s) URL`);
  if (m.jwks_uri !== undefined && !isHttpUrl(m.jwks_uri))
    throw new DiscoveryError(`${source}: jwks_uri is not an http(s) URL`);
  return { issuer, tokenEndpoint: m.token_endpoint, jwksUri: m.jwks_uri as string | undefined, source };
}

/**
 * Fetches the metadata: RFC 8414 first, OIDC discovery when the first answers 4xx. Network errors,
 * 5xx and a mismatching or malformed document fail the attempt (no fallback past a wrong answer).
 */
export async function fetchMetadata(
  issuer: string,
  options: { dispatcher: Dispatcher; timeoutMs: number },
): Promise<AuthorizationServerMetadata> {
  const urls = metadataUrls(issuer);
  const misses: string[] = [];
  for (const url of urls) {
    let res: { status: number; text: string };
    try {
      res = await boundedGet(url, options);
    } catch (err) {
      const e = err as Error & { code?: string; cause?: { code?: string } };
      const why =
        e.name === 'TimeoutError' || e.name === 'AbortError' ? 'timeout' : (e.code ?? e.cause?.code ?? e.message);
      throw new DiscoveryError(`${url}: ${why}`, { cause: err });
    }
    if (res.status === 200) return parseMetadata(issuer, url, res.text);
    if (res.status >= 500) throw new DiscoveryError(`${url}: HTTP ${res.status}`);
    misses.push(`${url}: HTTP ${res.status}`);
  }
  throw new DiscoveryError(`no metadata found (${misses.join('; ')})`);
}

export interface DiscoveryOptions {
  readonly issuer: string;
  readonly dispatcher: Dispatcher;
  readonly timeoutMs: number;
  /** Time between successful refreshes. */
  readonly refreshSeconds: number;
  readonly logger: Logger;
  /** First retry delay after a failure; doubles up to `maxRetryMs`. */
  readonly retryMs?: number;
  readonly maxRetryMs?: number;
  /** Called after each successful fetch (e.g. to re-run readiness probes that needed the endpoint). */
  readonly onDiscovered?: (metadata: AuthorizationServerMetadata) => void;
}

export interface Discovery {
  /** Runs the first discovery and schedules the next ones. Never rejects: see `readinessReason()`. */
  start(): Promise<void>;
  /** Fetches now; on failure the last good metadata stays in use. */
  refresh(): Promise<AuthorizationServerMetadata | undefined>;
  current(): AuthorizationServerMetadata | undefined;
  /** The discovered token endpoint; 503 `temporarily_unavailable` while none was discovered yet. */
  tokenEndpoint(): string;
  jwksUri(): string | undefined;
  /** undefined once metadata was loaded, else why not (for /readyz). */
  readinessReason(): string | undefined;
  close(): void;
}

/**
 * Authorization server discovery with scheduled refresh. A failed refresh keeps the last good
 * metadata (the AS is not less trustworthy for being briefly unreachable) and retries with backoff.
 */
export function createDiscovery(options: DiscoveryOptions): Discovery {
  const retryMs = options.retryMs ?? 1_000;
  const maxRetryMs = options.maxRetryMs ?? 30_000;
  let current: AuthorizationServerMetadata | undefined;
  let lastError = 'not discovered yet';
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let inFlight: Promise<AuthorizationServerMetadata | undefined> | undefined;

  const schedule = (ms: number) => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => void refresh(), ms);
    timer.unref();
  };

  const attempt = async (): Promise<AuthorizationServerMetadata | undefined> => {
    try {
      const next = await fetchMetadata(options.issuer, options);
      const changed = current?.tokenEndpoint !== next.tokenEndpoint || current?.jwksUri !== next.jwksUri;
      current = next;
      failures = 0;
      if (changed) {
        options.logger.info(
          { issuer: next.issuer, tokenEndpoint: next.tokenEndpoint, jwksUri: next.jwksUri, source: next.source },
          'authorization server discovered',
        );
      }
      schedule(options.refreshSeconds * 1000);
      options.onDiscovered?.(next);
      return next;
    } catch (err) {
      failures += 1;
      lastError = err instanceof Error ? err.message : String(err);
      const delay = Math.min(maxRetryMs, retryMs * 2 ** Math.min(failures - 1, 16));
      options.logger[current ? 'warn' : 'error'](
        { issuer: options.issuer, reason: lastError, retryInMs: delay, keepingPrevious: current !== undefined },
        'authorization server discovery failed',
      );
      schedule(delay);
      return undefined;
    }
  };

  const refresh = (): Promise<AuthorizationServerMetadata | undefined> => {
    // One fetch at a time; callers during it share its result.
    inFlight ??= attempt().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };

  return {
    async start() {
      await refresh();
    },
    refresh,
    current: () => current,
    tokenEndpoint() {
      if (current) return current.tokenEndpoint;
      throw new TokenExchangeError(
        'temporarily_unavailable',
        'the authorization server is not available yet',
        'unavailable',
        {
          detail: `discovery of ${options.issuer} has not succeeded: ${lastError}`,
          retryAfterSeconds: 5,
        },
      );
    },
    jwksUri: () => current?.jwksUri,
    readinessReason: () => (current ? undefined : lastError),
    close() {
      closed = true;
      clearTimeout(timer);
    },
  };
}
