import http, { type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { Agent, type Dispatcher } from 'undici';
import { type ActorTokenSource, createActorTokenSource } from './auth/actor-token.js';
import { createAuthSetup } from './auth/auth-setup.js';
import { TokenService } from './auth/token-service.js';
import { parseListenAddress } from './config/address.js';
import type { ResolvedConfig } from './config/load.js';
import { McpPolicies } from './mcp/policies.js';
import { createLogger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { createRouteMetrics } from './observability/route-metrics.js';
import { type Clock, systemClock } from './pipeline/clock.js';
import type { Timer } from './pipeline/timer.js';
import { createForwarder, type Forwarder } from './proxy/forwarder.js';
import { createHandler } from './proxy/handler.js';
import { isWebSocketUpgrade } from './proxy/websocket-checks.js';
import { createWebSocketUpgrades } from './proxy/websocket-upgrade.js';
import { createRevocation, type RevocationWiring } from './revocation/create.js';
import { createAdminHandler } from './server/admin.js';
import { listen, urlOf } from './server/listen.js';
import { createReadiness, type Readiness } from './server/readiness.js';
import { createRuntime, type ProxyRuntime } from './server/reload.js';
import { clientErrorAnswer, refuseDuplicateHost } from './server/request-framing.js';
import { gracefulServer, type InFlight } from './server/shutdown.js';
import { createStepUp } from './step-up/create.js';
import { VERSION } from './version.js';

/** Everything the proxy needs from outside; each has a production default. */
export interface ProxyDeps {
  readonly logger: Logger;
  readonly registry: Registry;
  readonly clock: Clock;
  /** Dispatcher for the authorization server (token endpoint, discovery, JWKS). */
  readonly dispatcher: Dispatcher;
  /** Override the configured listen addresses (tests use port 0). */
  readonly listen: { host: string; port: number };
  readonly admin: { host: string; port: number };
  /** Schedules step-up approval timeouts (tests fire them by hand). */
  readonly stepUpTimer: Timer;
  /** Schedules RFC 8936 poll rounds (tests run them by hand). */
  readonly revocationTimer: Timer;
}

export interface StartedProxy {
  readonly url: string;
  readonly adminUrl: string;
}

export interface DelegateProxy {
  readonly metrics: Metrics;
  readonly tokens: TokenService;
  readonly readiness: Readiness;
  readonly logger: Logger;
  readonly agentServer: Server;
  readonly adminServer: Server;
  /** Requests on the agent listener whose response has not ended (SSE streams included). */
  readonly inFlight: InFlight;
  /** Revocation (docs/revocation.md): the revoker, SSF receiver and poll client when configured. */
  readonly revocation: RevocationWiring;
  /** WebSocket upgrade sockets not closed yet (handshakes in progress and open connections). */
  readonly websockets: { readonly count: number };
  /** The config requests currently use (reload swaps it). */
  runtime(): ProxyRuntime;
  /**
   * Swaps in the live part of a validated config (routes, scopes, cache TTL settings, subject
   * header; see config/reload.ts LIVE_PATHS) atomically; other changes need a restart.
   */
  applyConfig(next: ResolvedConfig): void;
  start(): Promise<StartedProxy>;
  /** Stops accepting, lets in-flight requests finish up to `graceMs`, then closes everything. */
  close(graceMs?: number): Promise<void>;
}

const MAX_HEADER_BYTES = 16 * 1024;

/** Builds a proxy from a validated config. Nothing listens until `start()`. */
export function createProxy(config: ResolvedConfig, deps: Partial<ProxyDeps> = {}): DelegateProxy {
  const logger = deps.logger ?? createLogger({ level: config.logging.level, pretty: config.logging.pretty });
  const registry = deps.registry ?? new Registry();
  const clock = deps.clock ?? systemClock;
  const ownDispatcher = deps.dispatcher === undefined;
  const dispatcher =
    deps.dispatcher ??
    new Agent({
      keepAliveTimeout: 30_000,
      // One connection per exchange slot (src/auth/exchange-queue.ts) plus a few for the readiness
      // probe, discovery and JWKS, so that those never wait behind exchanges.
      // Pools are per origin: the largest of the servers' slots (docs/cross-domain.md).
      connections:
        Math.max(
          config.authorizationServer.maxConcurrentExchanges,
          ...Object.values(config.authorizationServers).map((s) => s.maxConcurrentExchanges),
        ) + 4,
      connectTimeout: config.authorizationServer.timeoutMs,
    });
  const as = config.authorizationServer;
  let runtime: ProxyRuntime = createRuntime(config);
  // Discovery, client auth, failure policy, subject verification, issued-token checks (docs/security.md).
  const auth = createAuthSetup(config, {
    dispatcher,
    clock,
    logger,
    invalidGrantMemorySeconds: () => runtime.config.cache.invalidGrantMemorySeconds,
    // Called only once exchanges run, after `metrics` below exists.
    observeStep: (labels, seconds) => {
      metrics.authorizationServerRequests.inc(labels);
      metrics.authorizationServerRequestDuration.observe({ server: labels.server, step: labels.step }, seconds);
    },
  });
  const tokenEndpoint = auth.tokenEndpoint;

  const actor: ActorTokenSource | undefined = config.actorToken
    ? createActorTokenSource({ file: config.actorToken.file, type: config.actorToken.type, logger })
    : undefined;
  let tokens: TokenService | undefined;
  const metrics = createMetrics({
    registry,
    version: VERSION,
    cacheEntries: () => tokens?.cache.size ?? 0,
    exchangeQueue: () => auth.exchangeQueue,
  });
  // Per-route label children, made once per route object: shared by the token service, the HTTP
  // pipeline and WebSocket upgrades.
  const routeMetrics = createRouteMetrics(metrics);
  tokens = new TokenService({
    routeMetrics,
    client: auth.client,
    checkIssued: auth.checkIssued,
    serverFor: (route) => auth.servers.forRoute(route),
    // Getters: read once per exchange from the current runtime, so a reload applies atomically.
    get cache() {
      return runtime.cache;
    },
    get subjectTokenType() {
      return runtime.subjectTokenType;
    },
    clock,
    metrics,
    actor,
  });
  const forwarder: Forwarder = createForwarder(config.upstreams);
  const readiness = createReadiness({
    probeUrl: tokenEndpoint,
    dispatcher,
    timeoutMs: as.timeoutMs,
    onChange: (s) => logger[s.ready ? 'info' : 'warn']({ ready: s.ready, reasons: s.reasons }, 'readiness changed'),
  });

  const stepUp = createStepUp(config, { tokens, metrics, clock, actor, dispatcher, logger, timer: deps.stepUpTimer });
  const revocation = createRevocation(config, {
    tokens,
    metrics,
    clock,
    dispatcher,
    timeoutMs: as.timeoutMs,
    logger,
    timer: deps.revocationTimer,
  });
  // MCP routes' compiled policies and users' grants, made once for both the requests and the upgrades.
  const mcpPolicies = new McpPolicies(metrics, config.cache.maxEntries);
  const handler = createHandler({
    runtime: () => runtime,
    tokens,
    forwarder,
    metrics,
    logger,
    clock,
    subjectVerifier: auth.subjectVerifier,
    stepUp: stepUp.step,
    revocation: revocation.revoker,
    mcpPolicies,
    routeMetrics,
  });
  // docs/websocket.md: upgrades take the same pipeline up to the token, then their own upstream handshake.
  const websocketDispatcher = new Agent({ connectTimeout: 10_000 });
  const websockets = createWebSocketUpgrades({
    runtime: () => runtime,
    tokens,
    metrics,
    logger,
    clock,
    subjectVerifier: auth.subjectVerifier,
    stepUp: stepUp.step,
    revocation: revocation.revoker,
    dispatcher: websocketDispatcher,
    mcpPolicies,
    routeMetrics,
  });
  const timeouts = config.clientTimeouts;
  const agentServer = http.createServer(
    {
      maxHeaderSize: MAX_HEADER_BYTES,
      requireHostHeader: true,
      headersTimeout: timeouts.headersMs,
      requestTimeout: timeouts.requestMs,
      // Node checks both timeouts on this interval (default 30 s): keep a slow client's 408 near its limit.
      connectionsCheckingInterval: Math.min(1_000, Math.max(100, Math.floor(timeouts.headersMs / 4))),
      // Node >= 24.9: other upgrades (h2c...) stay plain requests, as before; older Node sends them to 'upgrade' (refused there).
      shouldUpgradeCallback: isWebSocketUpgrade,
    },
    refuseDuplicateHost(handler),
  );
  agentServer.on('upgrade', websockets.handle);
  agentServer.on('connect', (_req, socket: Socket) => {
    // Authority-form CONNECT would make this an open proxy (RFC 9110 §9.3.6): refuse it.
    socket.end('HTTP/1.1 405 Method Not Allowed\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
  });
  agentServer.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const { status, description } = clientErrorAnswer(err.code);
    const body = JSON.stringify({ error: 'invalid_request', error_description: description });
    socket.end(
      `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
    );
  });
  const agent = gracefulServer(agentServer, { draining: () => readiness.draining });
  const adminServer = http.createServer(
    createAdminHandler({ registry, readiness, logger, stepUp: stepUp.admin, revocation: revocation.admin }),
  );

  const sweep = setInterval(() => tokens.cache.sweep(), 30_000);
  let closing: Promise<void> | undefined;
  sweep.unref();

  return {
    metrics,
    tokens,
    readiness,
    logger,
    agentServer,
    adminServer,
    inFlight: agent.inFlight,
    revocation,
    websockets,
    runtime: () => runtime,
    applyConfig(next) {
      runtime = createRuntime(next, config);
    },
    async start() {
      const agentAddr = deps.listen ?? parseListenAddress(config.listen);
      const adminAddr = deps.admin ?? parseListenAddress(config.admin);
      const [a, b] = await Promise.all([
        listen(agentServer, agentAddr.host, agentAddr.port),
        listen(adminServer, adminAddr.host, adminAddr.port),
      ]);
      await auth.start(readiness);
      await readiness.start();
      revocation.start();
      const started = { url: urlOf(a), adminUrl: urlOf(b) };
      logger.info(
        { listen: started.url, admin: started.adminUrl, routes: runtime.routes.routes.map((r) => r.name) },
        'delegate-proxy started',
      );
      return started;
    },
    close(graceMs = 0) {
      // Idempotent: a signal handler and a test's afterEach may both close.
      closing ??= (async () => {
        readiness.drain();
        readiness.stop();
        stepUp.close(); // held step-up requests answer 503 now instead of waiting out the grace period
        revocation.close(); // no poll round starts after this
        clearInterval(sweep);
        // Upgraded sockets are outside the HTTP server's tracking: the WebSockets get the same grace period.
        const [cut, cutWebSockets] = await Promise.all([agent.close(graceMs), websockets.close(graceMs)]);
        if (cut > 0) logger.warn({ cut, graceMs }, 'grace period over: cut requests still in flight');
        if (cutWebSockets > 0)
          logger.warn({ cutWebSockets, graceMs }, 'grace period over: closed WebSockets still open');
        await new Promise<void>((resolve) => {
          if (!adminServer.listening) resolve();
          else adminServer.close(() => resolve());
          adminServer.closeAllConnections();
        });
        await forwarder.close();
        await websocketDispatcher.close();
        actor?.close();
        auth.close();
        if (ownDispatcher) await dispatcher.close();
      })();
      return closing;
    },
  };
}
