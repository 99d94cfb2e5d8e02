import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { type ActorTokenSource, createActorTokenSource } from './auth/actor-token.js';
import { type AuthSetup, createAuthSetup } from './auth/auth-setup.js';
import { TokenService, type TokenServiceOptions } from './auth/token-service.js';
import { parseListenAddress } from './config/address.js';
import type { ResolvedConfig } from './config/load.js';
import { Fleet } from './fleet/fleet.js';
import { createServer } from './http/node-http.js';
import { Agent } from './http/undici.js';
import { McpPolicies } from './mcp/policies.js';
import { createLogger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { Registry } from './observability/prom.js';
import { createRouteMetrics } from './observability/route-metrics.js';
import { type Clock, systemClock } from './pipeline/clock.js';
import type { Timer } from './pipeline/timer.js';
import { createForwarder } from './proxy/forwarder.js';
import { createHandler } from './proxy/handler.js';
import { OpenStreams, streamTimer } from './proxy/open-streams.js';
import type { PipelineDeps } from './proxy/prepare.js';
import { streamedBodyGarbage } from './proxy/streamed-body-garbage.js';
import { createWebSocketUpgrades, type WebSocketUpgrades } from './proxy/websocket-upgrade.js';
import { createRevocation, type RevocationWiring } from './revocation/create.js';
import { createAdminHandler } from './server/admin.js';
import { createAgentServer } from './server/agent-server.js';
import { youngCollector } from './server/collections.js';
import { listen, urlOf } from './server/listen.js';
import { createReadiness, type Readiness } from './server/readiness.js';
import { createRuntime, type ProxyRuntime } from './server/reload.js';
import { type GracefulServer, gracefulServer, type InFlight } from './server/shutdown.js';
import { createStepUp } from './step-up/create.js';
import { VERSION } from './version.js';

/** Request body sent upstream between two young-generation collections (streamed-body-garbage.ts). */
const STREAMED_BODY_COLLECT_BYTES = 8 * 1024 * 1024;

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
  /** Schedules the lifetime limits of long-lived responses (tests run them by hand). */
  readonly streamTimer: Timer;
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
  /** Fleet mode (docs/fleet.md): the link to the other proxies through Redis, when configured. */
  readonly fleet: Fleet | undefined;
  /** Revocation (docs/revocation.md): the revoker, SSF receiver and poll client when configured. */
  readonly revocation: RevocationWiring;
  /** WebSocket upgrade sockets not closed yet (handshakes in progress and open connections). */
  readonly websockets: { readonly count: number };
  /** Open long-lived responses tracked for lifetime limits and revocation (SSE streams, WebSockets). */
  readonly streams: { readonly size: number };
  /** The config requests currently use (reload swaps it). */
  runtime(): ProxyRuntime;
  /**
   * Swaps in the live part of a validated config (routes, scopes, cache TTL settings, subject
   * header; see server/reload.ts LIVE_PATHS) atomically; other changes need a restart.
   */
  applyConfig(next: ResolvedConfig): void;
  start(): Promise<StartedProxy>;
  /** Stops accepting, lets in-flight requests finish up to `graceMs`, then closes everything. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Most long-lived responses tracked at once (docs/revocation.md "Open streams"); one more is closed
 * at once rather than left open beyond revocation's reach. A sidecar serves one agent pod.
 */
const MAX_OPEN_STREAMS = 10_000;

/** Builds a proxy from a validated config. Nothing listens until `start()`. */
export function createProxy(config: ResolvedConfig, deps: Partial<ProxyDeps> = {}): DelegateProxy {
  const logger = deps.logger ?? createLogger({ level: config.logging.level, pretty: config.logging.pretty });
  const registry = deps.registry ?? new Registry();
  const clock = deps.clock ?? systemClock;
  const dispatcher = deps.dispatcher ?? authorizationServerAgent(config);
  const live: Live = { runtime: createRuntime(config) };
  // Discovery, client auth, failure policy, subject verification, issued-token checks (docs/security.md).
  const auth = createAuthSetup(config, {
    dispatcher,
    clock,
    logger,
    invalidGrantMemorySeconds: () => live.runtime.config.cache.invalidGrantMemorySeconds,
    // Called only once exchanges run, after `metrics` below exists.
    observeStep: (labels, seconds) => {
      metrics.authorizationServerRequests.inc(labels);
      metrics.authorizationServerRequestDuration.observe({ server: labels.server, step: labels.step }, seconds);
    },
  });
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
  tokens = createTokenService(live, auth, { metrics, routeMetrics, clock, actor });
  const readiness = createReadiness({
    probeUrl: auth.tokenEndpoint,
    dispatcher,
    timeoutMs: config.authorizationServer.timeoutMs,
    onChange: (s) => logger[s.ready ? 'info' : 'warn']({ ready: s.ready, reasons: s.reasons }, 'readiness changed'),
  });
  // Open SSE streams and WebSockets by user: lifetime limits, closed on revocation.
  const streams = new OpenStreams({ metrics, timer: deps.streamTimer ?? streamTimer, maxStreams: MAX_OPEN_STREAMS });
  // Fleet mode (docs/fleet.md): Redis is loaded and connected only when `fleet` is configured.
  const fleet =
    config.fleet === undefined ? undefined : new Fleet(config.fleet, config.secrets, { metrics, clock, logger });
  const stepUp = createStepUp(config, {
    tokens,
    metrics,
    clock,
    actor,
    dispatcher,
    logger,
    timer: deps.stepUpTimer,
    fleet,
  });
  const revocation = createRevocation(config, {
    tokens,
    metrics,
    clock,
    dispatcher,
    timeoutMs: config.authorizationServer.timeoutMs,
    logger,
    timer: deps.revocationTimer,
    streams,
    fleet,
  });
  const revocationFleet = revocation.fleet;
  if (revocationFleet !== undefined) readiness.addCheck('fleet', () => revocationFleet.readinessReason());
  const pipeline: PipelineDeps = {
    runtime: () => live.runtime,
    tokens,
    metrics,
    logger,
    clock,
    subjectVerifier: auth.subjectVerifier,
    stepUp: stepUp.step,
    revocation: revocation.revoker,
    // MCP routes' compiled policies and users' grants, made once for both the requests and the upgrades.
    mcpPolicies: new McpPolicies(metrics, config.cache.maxEntries),
    routeMetrics,
  };
  const forwarder = createForwarder(
    config.upstreams,
    streamedBodyGarbage(youngCollector(), STREAMED_BODY_COLLECT_BYTES),
  );
  // docs/websocket.md: upgrades take the same pipeline up to the token, then their own upstream handshake.
  const websocketDispatcher = new Agent({ connectTimeout: 10_000 });
  const websockets = createWebSocketUpgrades(pipeline, websocketDispatcher, streams);
  const agentServer = createAgentServer(
    config.clientTimeouts,
    createHandler(pipeline, forwarder, streams),
    websockets.handle,
  );
  const agent = gracefulServer(agentServer, { draining: () => readiness.draining });
  const adminServer = createServer(
    createAdminHandler({ registry, readiness, logger, stepUp: stepUp.admin, revocation: revocation.admin }),
  );
  const sweep = setInterval(() => tokens.cache.sweep(), 30_000);
  sweep.unref();
  const parts: Parts = {
    logger,
    live,
    auth,
    readiness,
    stepUp,
    revocation,
    fleet,
    sweep,
    agentServer,
    agent,
    adminServer,
    websockets,
    closers: [
      () => forwarder.close(),
      () => websocketDispatcher.close(),
      () => actor?.close(),
      () => auth.close(),
      () => fleet?.close(),
      // A dispatcher passed in belongs to the caller.
      () => (deps.dispatcher === undefined ? dispatcher.close() : undefined),
    ],
  };

  let closing: Promise<void> | undefined;
  return {
    metrics,
    tokens,
    readiness,
    logger,
    agentServer,
    adminServer,
    inFlight: agent.inFlight,
    fleet,
    revocation,
    websockets,
    streams,
    runtime: () => live.runtime,
    applyConfig(next) {
      live.runtime = createRuntime(next, config);
    },
    start: () =>
      start(parts, deps.listen ?? parseListenAddress(config.listen), deps.admin ?? parseListenAddress(config.admin)),
    close(graceMs = 0) {
      // Idempotent: a signal handler and a test's afterEach may both close.
      closing ??= close(parts, graceMs);
      return closing;
    },
  };
}

/** What starting and closing a proxy touch, in the order they are stopped. */
interface Parts {
  readonly logger: Logger;
  readonly live: Live;
  readonly auth: AuthSetup;
  readonly readiness: Readiness;
  readonly stepUp: { close(): void };
  readonly revocation: RevocationWiring;
  readonly fleet: Fleet | undefined;
  readonly sweep: NodeJS.Timeout;
  readonly agentServer: Server;
  readonly agent: GracefulServer;
  readonly adminServer: Server;
  readonly websockets: WebSocketUpgrades;
  /** Closed last, in order: what outgoing connections the proxy holds. */
  readonly closers: readonly (() => Promise<void> | void)[];
}

async function start(
  parts: Parts,
  agentAddress: { host: string; port: number },
  adminAddress: { host: string; port: number },
): Promise<StartedProxy> {
  const [a, b] = await Promise.all([
    listenOn(parts.agentServer, agentAddress),
    listenOn(parts.adminServer, adminAddress),
  ]);
  await parts.auth.start(parts.readiness);
  if (parts.fleet !== undefined) {
    await parts.fleet.start();
    // Fail closed: not ready until the fleet's revocation list is read; the wait is bounded.
    await parts.revocation.fleet?.waitLoaded(parts.fleet.syncTimeoutMs);
  }
  await parts.readiness.start();
  parts.revocation.start();
  const started = { url: urlOf(a), adminUrl: urlOf(b) };
  parts.logger.info(
    { listen: started.url, admin: started.adminUrl, routes: parts.live.runtime.routes.routes.map((r) => r.name) },
    'delegate-proxy started',
  );
  return started;
}

async function close(parts: Parts, graceMs: number): Promise<void> {
  const { readiness, logger, adminServer } = parts;
  readiness.drain();
  readiness.stop();
  parts.stepUp.close(); // held step-up requests answer 503 now instead of waiting out the grace period
  parts.revocation.close(); // no poll round starts after this
  clearInterval(parts.sweep);
  // Upgraded sockets are outside the HTTP server's tracking: the WebSockets get the same grace period.
  const [cut, cutWebSockets] = await Promise.all([parts.agent.close(graceMs), parts.websockets.close(graceMs)]);
  if (cut > 0) logger.warn({ cut, graceMs }, 'grace period over: cut requests still in flight');
  if (cutWebSockets > 0) logger.warn({ cutWebSockets, graceMs }, 'grace period over: closed WebSockets still open');
  await new Promise<void>((resolve) => {
    if (!adminServer.listening) resolve();
    else adminServer.close(() => resolve());
    adminServer.closeAllConnections();
  });
  for (const closeOne of parts.closers) await closeOne();
}

/** The config requests use now; a reload swaps it. */
interface Live {
  runtime: ProxyRuntime;
}

/**
 * The dispatcher for the authorization servers: one connection per exchange slot
 * (src/auth/exchange-queue.ts) plus a few for the readiness probe, discovery and JWKS, so that those
 * never wait behind exchanges. Pools are per origin: the largest of the servers' slots (README
 * "Cross-domain routes").
 */
function authorizationServerAgent(config: ResolvedConfig): Agent {
  return new Agent({
    keepAliveTimeout: 30_000,
    connections:
      Math.max(
        config.authorizationServer.maxConcurrentExchanges,
        ...Object.values(config.authorizationServers).map((s) => s.maxConcurrentExchanges),
      ) + 4,
    connectTimeout: config.authorizationServer.timeoutMs,
  });
}

function createTokenService(
  live: Live,
  auth: AuthSetup,
  deps: Pick<TokenServiceOptions, 'metrics' | 'routeMetrics' | 'clock' | 'actor'>,
): TokenService {
  return new TokenService({
    ...deps,
    client: auth.client,
    checkIssued: auth.checkIssued,
    serverFor: (route) => auth.servers.forRoute(route),
    // Getters: read once per exchange from the current runtime, so a reload applies atomically.
    get cache() {
      return live.runtime.cache;
    },
    get subjectTokenType() {
      return live.runtime.subjectTokenType;
    },
  });
}

function listenOn(server: Server, address: { host: string; port: number }) {
  return listen(server, address.host, address.port);
}
