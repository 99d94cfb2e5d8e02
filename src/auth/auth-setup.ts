import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { ResolvedConfig } from '../config/load.js';
import { type CircuitBreaker, createCircuitBreaker, withCircuitBreaker } from './circuit-breaker.js';
import type { Clock } from '../pipeline/clock.js';
import { createClientAuth } from './create-client-auth.js';
import { createDiscovery, type Discovery } from './discovery.js';
import { withInvalidGrantMemory } from './invalid-grant-memory.js';
import { checkIssuedToken } from './issued-token-checks.js';
import { withRetries } from './retry-policy.js';
import { createSubjectVerifier, type SubjectVerifier } from './subject-verify.js';
import { createTokenExchangeClient, type TokenExchangeClient } from './token-exchange.js';

/** The part of the server's readiness (src/server/readiness.ts) that auth registers its checks with. */
export interface ReadinessChecks {
  addCheck(name: string, check: () => string | undefined): unknown;
  probe(): Promise<unknown>;
}

export interface AuthSetupDeps {
  readonly dispatcher: Dispatcher;
  readonly clock: Clock;
  readonly logger: Logger;
  /** cache.invalidGrantMemorySeconds of the current (reloadable) config. */
  readonly invalidGrantMemorySeconds: () => number;
}

/** Everything that talks to the authorization server or judges what it says, wired once. */
export interface AuthSetup {
  /** Configured, else discovered; 503 while neither is known. */
  tokenEndpoint(): string;
  /** The exchange client with the failure policy: invalid_grant memory -> retries -> breaker -> HTTP. */
  readonly client: TokenExchangeClient;
  readonly checkIssued: typeof checkIssuedToken;
  readonly subjectVerifier: SubjectVerifier | undefined;
  readonly breaker: CircuitBreaker;
  readonly discovery: Discovery | undefined;
  /**
   * Runs the first discovery and JWKS load and registers their readiness checks. It waits for the
   * first attempt only: if the AS is not there yet the proxy still starts, /readyz answers 503 and
   * exchanges answer 503 until a retry succeeds.
   */
  start(readiness: ReadinessChecks): Promise<void>;
  close(): void;
}

const JWKS_RETRY_MS = 5_000;

export function createAuthSetup(config: ResolvedConfig, deps: AuthSetupDeps): AuthSetup {
  const as = config.authorizationServer;
  const verifyConfig = config.subjectToken.verify;
  const needsDiscovery =
    as.issuer !== undefined && (as.tokenEndpoint === undefined || (verifyConfig !== undefined && verifyConfig.jwksUri === undefined));
  let onDiscovered: (() => void) | undefined;
  const discovery =
    needsDiscovery && as.issuer !== undefined
      ? createDiscovery({
          issuer: as.issuer,
          dispatcher: deps.dispatcher,
          timeoutMs: as.timeoutMs,
          refreshSeconds: as.discoveryRefreshSeconds,
          logger: deps.logger,
          onDiscovered: () => onDiscovered?.(),
        })
      : undefined;
  const tokenEndpoint = (): string => {
    if (as.tokenEndpoint !== undefined) return as.tokenEndpoint;
    if (discovery === undefined) throw new Error('authorizationServer: neither tokenEndpoint nor issuer is set');
    return discovery.tokenEndpoint();
  };

  const breaker = createCircuitBreaker({
    failureThreshold: as.circuitBreaker.failureThreshold,
    openMs: as.circuitBreaker.openSeconds * 1000,
    clock: deps.clock,
    onStateChange: (state, detail) =>
      deps.logger[state === 'open' ? 'error' : 'info']({ circuit: state, detail }, `authorization server circuit ${state}`),
  });
  const http = createTokenExchangeClient({
    tokenEndpoint,
    dispatcher: deps.dispatcher,
    clientAuth: createClientAuth(config, { tokenEndpoint }),
    timeoutMs: as.timeoutMs,
  });
  const client = withInvalidGrantMemory(
    withRetries(withCircuitBreaker(http, breaker), {
      maxAttempts: as.retry.maxAttempts,
      budgetMs: as.retry.budgetMs ?? 2 * as.timeoutMs,
      attemptTimeoutMs: as.timeoutMs,
      backoffMs: as.retry.backoffMs,
    }),
    { seconds: deps.invalidGrantMemorySeconds, clock: deps.clock },
  );

  const subjectVerifier =
    verifyConfig === undefined
      ? undefined
      : createSubjectVerifier({
          jwksUri: () => verifyConfig.jwksUri ?? discovery?.jwksUri(),
          issuer: verifyConfig.issuer,
          audience: verifyConfig.audience,
          algorithms: verifyConfig.algorithms,
          clockToleranceSeconds: verifyConfig.clockToleranceSeconds,
          dispatcher: deps.dispatcher,
          timeoutMs: as.timeoutMs,
          clock: deps.clock,
        });

  let jwksTimer: NodeJS.Timeout | undefined;
  let closed = false;
  const warmJwks = async (): Promise<void> => {
    if (!subjectVerifier || closed) return;
    await subjectVerifier.warm();
    if (subjectVerifier.readinessReason() !== undefined && !closed) {
      // Retried until it works: an unready pod gets no traffic that would load the keys instead.
      jwksTimer = setTimeout(() => void warmJwks(), JWKS_RETRY_MS);
      jwksTimer.unref();
    }
  };

  return {
    tokenEndpoint,
    client,
    checkIssued: (issued, request, subject) =>
      checkIssuedToken(issued, request, subject, { allowExpAfterSubject: config.authorizationServer.allowIssuedExpAfterSubject }),
    subjectVerifier,
    breaker,
    discovery,
    async start(readiness) {
      if (discovery) {
        readiness.addCheck('discovery', () => discovery.readinessReason());
        await discovery.start();
        // A late first discovery: probe the now known token endpoint and load keys at once.
        onDiscovered = () => {
          void readiness.probe();
          if (subjectVerifier?.readinessReason() !== undefined) {
            clearTimeout(jwksTimer);
            void warmJwks();
          }
        };
      }
      if (subjectVerifier) {
        readiness.addCheck('jwks', () => subjectVerifier.readinessReason());
        await warmJwks();
      }
    },
    close() {
      closed = true;
      clearTimeout(jwksTimer);
      discovery?.close();
    },
  };
}
