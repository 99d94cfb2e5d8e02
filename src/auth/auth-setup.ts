import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { ResolvedConfig } from '../config/load.js';
import { DEFAULT_SERVER } from '../config/schema.js';
import type { Clock } from '../pipeline/clock.js';
import type { CircuitBreaker } from './circuit-breaker.js';
import type { Discovery } from './discovery.js';
import type { ExchangeQueue } from './exchange-queue.js';
import type { checkIssuedToken } from './issued-token-checks.js';
import { createServerAuth } from './server-auth.js';
import { createServerRegistry, type ServerRegistry, type StepObserver } from './servers.js';
import { createSubjectVerifier, type SubjectVerifier } from './subject-verify.js';
import type { TokenExchangeClient } from './token-exchange.js';

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
  /** Per server and step (docs/operations.md "Metrics"); called after each request to an authorization server. */
  readonly observeStep?: StepObserver;
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
  /** Exchanges in flight at the AS and waiting for a slot (metrics). */
  readonly exchangeQueue: Pick<ExchangeQueue, 'inFlight' | 'queued'>;
  readonly discovery: Discovery | undefined;
  /** Every configured authorization server by name, `default` included. */
  readonly servers: ServerRegistry;
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
  let onDiscovered: (() => void) | undefined;
  const server = createServerAuth(
    {
      name: DEFAULT_SERVER,
      config: as,
      secrets: config.secrets,
      path: 'authorizationServer',
      discoverForKeys: verifyConfig !== undefined && verifyConfig.jwksUri === undefined,
      onDiscovered: () => onDiscovered?.(),
    },
    deps,
  );
  const { tokenEndpoint, client, breaker, exchangeQueue, discovery } = server;
  // Routes that name another server (docs/cross-domain.md); the default is `server`.
  const servers = createServerRegistry(server, config, deps);

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
    checkIssued: server.checkIssued,
    servers,
    subjectVerifier,
    breaker,
    exchangeQueue,
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
      await servers.start(readiness);
      if (subjectVerifier) {
        readiness.addCheck('jwks', () => subjectVerifier.readinessReason());
        await warmJwks();
      }
    },
    close() {
      closed = true;
      clearTimeout(jwksTimer);
      discovery?.close();
      servers.close();
    },
  };
}
