import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { ServerSecrets } from '../config/load.js';
import type { AuthorizationServerConfig } from '../config/schema.js';
import type { Clock } from '../pipeline/clock.js';
import { type CircuitBreaker, createCircuitBreaker, withCircuitBreaker } from './circuit-breaker.js';
import { createDiscovery, type Discovery } from './discovery.js';
import { type ExchangeQueue, withExchangeQueue } from './exchange-queue.js';
import { withInvalidGrantMemory } from './invalid-grant-memory.js';
import { checkIssuedToken } from './issued-token-checks.js';
import { withRetries } from './retry-policy.js';
import { createServerClientAuth } from './server-client-auth.js';
import { createTokenExchangeClient, type TokenExchangeClient } from './token-exchange.js';

export interface ServerAuthDeps {
  readonly dispatcher: Dispatcher;
  readonly clock: Clock;
  readonly logger: Logger;
  /** cache.invalidGrantMemorySeconds of the current (reloadable) config. */
  readonly invalidGrantMemorySeconds: () => number;
}

export interface ServerAuthOptions {
  /** `default` for authorizationServer, else the key in authorizationServers (logs, readiness). */
  readonly name: string;
  readonly config: AuthorizationServerConfig;
  readonly secrets: ServerSecrets;
  /** Config path for errors, e.g. `authorizationServers.partner`. */
  readonly path: string;
  /** Discover even with a tokenEndpoint set (the subject verifier needs the jwks_uri). */
  readonly discoverForKeys?: boolean;
  /** Called after a late first discovery. */
  readonly onDiscovered?: () => void;
}

/** One authorization server: its endpoint (configured or discovered), client auth and failure policy. */
export interface ServerAuth {
  readonly name: string;
  /** Configured, else discovered; 503 while neither is known. */
  tokenEndpoint(): string;
  /** The exchange client with the failure policy: invalid_grant memory -> queue -> retries -> breaker -> HTTP. */
  readonly client: TokenExchangeClient;
  readonly checkIssued: typeof checkIssuedToken;
  readonly breaker: CircuitBreaker;
  /** Exchanges in flight at the AS and waiting for a slot (metrics). */
  readonly exchangeQueue: Pick<ExchangeQueue, 'inFlight' | 'queued'>;
  readonly discovery: Discovery | undefined;
}

/** Builds the per-server part of docs/security.md and docs/operations.md "Reliability" for one authorization server. */
export function createServerAuth(options: ServerAuthOptions, deps: ServerAuthDeps): ServerAuth {
  const as = options.config;
  const needsDiscovery =
    as.issuer !== undefined && (as.tokenEndpoint === undefined || options.discoverForKeys === true);
  const discovery =
    needsDiscovery && as.issuer !== undefined
      ? createDiscovery({
          issuer: as.issuer,
          dispatcher: deps.dispatcher,
          timeoutMs: as.timeoutMs,
          refreshSeconds: as.discoveryRefreshSeconds,
          logger: deps.logger,
          onDiscovered: () => options.onDiscovered?.(),
        })
      : undefined;
  const tokenEndpoint = (): string => {
    if (as.tokenEndpoint !== undefined) return as.tokenEndpoint;
    if (discovery === undefined) throw new Error(`${options.path}: neither tokenEndpoint nor issuer is set`);
    return discovery.tokenEndpoint();
  };

  const breaker = createCircuitBreaker({
    failureThreshold: as.circuitBreaker.failureThreshold,
    openMs: as.circuitBreaker.openSeconds * 1000,
    clock: deps.clock,
    onStateChange: (state, detail) =>
      deps.logger[state === 'open' ? 'error' : 'info'](
        { circuit: state, server: options.name, detail },
        `authorization server circuit ${state}`,
      ),
  });
  const http = createTokenExchangeClient({
    tokenEndpoint,
    dispatcher: deps.dispatcher,
    clientAuth: createServerClientAuth(as, options.secrets, options.path, { tokenEndpoint }),
    timeoutMs: as.timeoutMs,
  });
  // The queue wraps the retries: time spent waiting for a slot is not part of any AS timeout and
  // never reaches the breaker (docs/operations.md "Reliability": a burst of new users must not open the circuit).
  const exchangeQueue = withExchangeQueue(
    withRetries(withCircuitBreaker(http, breaker), {
      maxAttempts: as.retry.maxAttempts,
      budgetMs: as.retry.budgetMs ?? 2 * as.timeoutMs,
      attemptTimeoutMs: as.timeoutMs,
      backoffMs: as.retry.backoffMs,
    }),
    {
      maxConcurrent: as.maxConcurrentExchanges,
      maxQueued: as.maxQueuedExchanges,
      timeoutMs: as.exchangeQueueTimeoutMs,
    },
  );
  const client = withInvalidGrantMemory(exchangeQueue, { seconds: deps.invalidGrantMemorySeconds, clock: deps.clock });
  return {
    name: options.name,
    tokenEndpoint,
    client,
    checkIssued: (issued, request, subject) =>
      checkIssuedToken(issued, request, subject, { allowExpAfterSubject: as.allowIssuedExpAfterSubject }),
    breaker,
    exchangeQueue,
    discovery,
  };
}
