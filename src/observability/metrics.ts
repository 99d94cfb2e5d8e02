import type { ExchangeOutcome } from '../errors.js';
import { Counter, collectDefaultMetrics, Gauge, Histogram, type Registry } from './prom.js';

export const METRIC_PREFIX = 'delegate_proxy_';

/** Known MCP methods get their own label value; everything else is `other` (bounded labels). */
export const MCP_METHOD_LABELS = [
  'initialize',
  'ping',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
  'server/discover',
  'subscriptions/listen',
  'tasks/get',
  'tasks/update',
  'tasks/cancel',
  'notification',
  'response',
  'other',
] as const;
export type McpMethodLabel = (typeof MCP_METHOD_LABELS)[number];
/** How a WebSocket upgrade ended its handshake (docs/websocket.md). */
export type WebSocketOutcome = 'opened' | 'refused' | 'upstream_error';
export type StepUpOutcome = 'approved' | 'denied' | 'timeout' | 'error';
/** A long-lived response the proxy tracks (docs/mcp.md "Stream lifetime", docs/revocation.md "Open streams"). */
export type StreamKind = 'sse' | 'websocket';
/**
 * Why the proxy closed a long-lived response: the delegated token that opened it expired, the
 * configured limit passed, its user was revoked, or too many streams were open to track another.
 */
export type StreamCloseReason = 'expired' | 'max_lifetime' | 'revoked' | 'capacity';

/** Lifetimes of 0-600 s (TTL about 300 s, refreshed min(30 s, lifetime / 2) ahead: docs/token-cache.md). */
const TTL_BUCKETS = [5, 10, 15, 30, 45, 60, 90, 120, 180, 240, 270, 300, 330, 450, 600];
/** Fan-out latency: a few milliseconds on a LAN, up to the 1 s target and past it. */
const FLEET_APPLY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 30];
/** Exchange latency: milliseconds to a few seconds (AS timeout default 3 s). */
const EXCHANGE_BUCKETS = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5];
const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Every metric of the proxy, in one place (docs/design.md "Metrics"). */
export interface Metrics {
  readonly registry: Registry;
  readonly requests: Counter<'route' | 'code'>;
  readonly requestDuration: Histogram<'route'>;
  readonly tokenExchanges: Counter<'route' | 'outcome'>;
  readonly tokenExchangeDuration: Histogram<'route'>;
  /** Per authorization server and step (docs/cross-domain.md); `server` is bounded by config. */
  readonly authorizationServerRequests: Counter<'server' | 'step' | 'outcome'>;
  readonly authorizationServerRequestDuration: Histogram<'server' | 'step'>;
  readonly tokenTtl: Histogram<'route'>;
  readonly tokenRemainingTtl: Histogram<'route'>;
  readonly tokenRefreshes: Counter<'route' | 'trigger'>;
  readonly tokenCacheLookups: Counter<'route' | 'result'>;
  readonly tokenCacheEntries: Gauge;
  readonly tokenExchangeQueueDepth: Gauge;
  readonly tokenExchangesInFlight: Gauge;
  readonly tokenTtlCapped: Counter<'route'>;
  readonly mcpRequests: Counter<'route' | 'method' | 'outcome'>;
  readonly stepUp: Counter<'route' | 'outcome'>;
  readonly stepUpPending: Gauge;
  readonly buildInfo: Gauge<'version' | 'node'>;
  /** docs/revocation.md: source admin|ssf; event session_revoked|credential_change|token_claims_change|assurance_level_change|admin. */
  readonly revocations: Counter<'source' | 'event'>;
  /** Security Event Tokens received (push or poll), outcome accepted|rejected. */
  readonly securityEvents: Counter<'outcome'>;
  readonly websocketConnections: Gauge<'route'>;
  /** docs/fleet.md: 1 while connected to Redis, 0 while not; no sample without `fleet`. */
  readonly fleetConnected: Gauge;
  /** docs/fleet.md: kind revocation|lift|approval|decision; direction published|received|queued|dropped. */
  readonly fleetEvents: Counter<'kind' | 'direction'>;
  /** Events accepted while Redis was unavailable, waiting to be published. */
  readonly fleetQueued: Gauge;
  /** From a fleet event's acceptance on one proxy to its application on this one. */
  readonly fleetApplyDuration: Histogram<'kind'>;
  readonly websocketConnectionsTotal: Counter<'route' | 'outcome'>;
  /** Long-lived responses the proxy closed itself: kind sse|websocket, reason StreamCloseReason. */
  readonly streamsClosed: Counter<'route' | 'kind' | 'reason'>;
}

export interface MetricsOptions {
  readonly registry: Registry;
  readonly version: string;
  /** Collects the cache size at scrape time. */
  readonly cacheEntries?: () => number;
  /** Collects the exchange queue (src/auth/exchange-queue.ts) at scrape time. */
  readonly exchangeQueue?: () => { readonly inFlight: number; readonly queued: number };
  readonly defaultMetrics?: boolean;
}

export function createMetrics(options: MetricsOptions): Metrics {
  const registers = [options.registry];
  const p = METRIC_PREFIX;
  if (options.defaultMetrics !== false) collectDefaultMetrics(options.registry);
  const cacheEntries = options.cacheEntries;
  const exchangeQueue = options.exchangeQueue;
  const metrics: Metrics = {
    registry: options.registry,
    requests: new Counter({
      name: `${p}requests_total`,
      help: 'Requests answered, by route and HTTP status code.',
      labelNames: ['route', 'code'],
      registers,
    }),
    requestDuration: new Histogram({
      name: `${p}request_duration_seconds`,
      help: 'Time from request to response end.',
      labelNames: ['route'],
      buckets: REQUEST_BUCKETS,
      registers,
    }),
    tokenExchanges: new Counter({
      name: `${p}token_exchanges_total`,
      help: 'RFC 8693 token exchanges, by outcome.',
      labelNames: ['route', 'outcome'],
      registers,
    }),
    tokenExchangeDuration: new Histogram({
      name: `${p}token_exchange_duration_seconds`,
      help: 'Latency of token exchanges at the authorization server.',
      labelNames: ['route'],
      buckets: EXCHANGE_BUCKETS,
      registers,
    }),
    authorizationServerRequests: new Counter({
      name: `${p}authorization_server_requests_total`,
      help: 'Requests to each authorization server, by step (token_exchange, id_jag, jwt_bearer) and outcome.',
      labelNames: ['server', 'step', 'outcome'],
      registers,
    }),
    authorizationServerRequestDuration: new Histogram({
      name: `${p}authorization_server_request_duration_seconds`,
      help: 'Latency of each request to an authorization server (slot wait and retries included), by step.',
      labelNames: ['server', 'step'],
      buckets: EXCHANGE_BUCKETS,
      registers,
    }),
    tokenTtl: new Histogram({
      name: `${p}token_ttl_seconds`,
      help: 'Lifetime of each issued delegated token, after capping.',
      labelNames: ['route'],
      buckets: TTL_BUCKETS,
      registers,
    }),
    tokenRemainingTtl: new Histogram({
      name: `${p}token_remaining_ttl_seconds`,
      help: 'Time left on the delegated token when injected into a request (refreshed min(cache.refreshAheadSeconds, lifetime/2) before expiry).',
      labelNames: ['route'],
      buckets: TTL_BUCKETS,
      registers,
    }),
    tokenRefreshes: new Counter({
      name: `${p}token_refreshes_total`,
      help: 'Exchanges that replaced a cached token, by trigger: ahead (background, min(cache.refreshAheadSeconds, lifetime/2) before expiry; not for tokens bounded by the user token exp), expired, invalidated.',
      labelNames: ['route', 'trigger'],
      registers,
    }),
    tokenCacheLookups: new Counter({
      name: `${p}token_cache_lookups_total`,
      help: 'Token cache lookups, by result.',
      labelNames: ['route', 'result'],
      registers,
    }),
    tokenCacheEntries: new Gauge({
      name: `${p}token_cache_entries`,
      help: 'Delegated tokens currently cached.',
      registers,
      collect() {
        if (cacheEntries) this.set(cacheEntries());
      },
    }),
    tokenExchangeQueueDepth: new Gauge({
      name: `${p}token_exchange_queue_depth`,
      help: 'Token exchanges waiting in the proxy for a free slot to the authorization server.',
      registers,
      collect() {
        if (exchangeQueue) this.set(exchangeQueue().queued);
      },
    }),
    tokenExchangesInFlight: new Gauge({
      name: `${p}token_exchanges_in_flight`,
      help: 'Token exchanges holding a slot to the authorization server (sent, or between retries).',
      registers,
      collect() {
        if (exchangeQueue) this.set(exchangeQueue().inFlight);
      },
    }),
    tokenTtlCapped: new Counter({
      name: `${p}token_ttl_capped_total`,
      help: 'Issued tokens whose lifetime was cut to cache.maxTtlSeconds.',
      labelNames: ['route'],
      registers,
    }),
    mcpRequests: new Counter({
      name: `${p}mcp_requests_total`,
      help: 'MCP JSON-RPC messages, by method and policy outcome.',
      labelNames: ['route', 'method', 'outcome'],
      registers,
    }),
    stepUp: new Counter({
      name: `${p}step_up_total`,
      help: 'Step-up approvals, by outcome.',
      labelNames: ['route', 'outcome'],
      registers,
    }),
    stepUpPending: new Gauge({
      name: `${p}step_up_pending`,
      help: 'Step-up approvals waiting for a decision.',
      registers,
    }),
    websocketConnections: new Gauge({
      name: `${p}websocket_connections`,
      help: 'WebSocket connections open through the proxy.',
      labelNames: ['route'],
      registers,
    }),
    websocketConnectionsTotal: new Counter({
      name: `${p}websocket_connections_total`,
      help: 'WebSocket upgrades, by outcome (opened, refused by the proxy, upstream_error).',
      labelNames: ['route', 'outcome'],
      registers,
    }),
    streamsClosed: new Counter({
      name: `${p}streams_closed_total`,
      help: 'Long-lived responses (SSE streams, WebSockets) closed by the proxy, by kind and reason (expired, max_lifetime, revoked, capacity).',
      labelNames: ['route', 'kind', 'reason'],
      registers,
    }),
    buildInfo: new Gauge({
      name: `${p}build_info`,
      help: 'Build information; always 1.',
      labelNames: ['version', 'node'],
      registers,
    }),
    revocations: new Counter({
      name: `${p}revocations_total`,
      help: 'Users revoked or evicted, by source and event.',
      labelNames: ['source', 'event'],
      registers,
    }),
    securityEvents: new Counter({
      name: `${p}security_events_total`,
      help: 'Security Event Tokens received, by outcome.',
      labelNames: ['outcome'],
      registers,
    }),
    fleetConnected: new Gauge({
      name: `${p}fleet_connected`,
      help: 'Fleet mode: 1 while this proxy is connected to Redis, 0 while it is not.',
      registers,
    }),
    fleetEvents: new Counter({
      name: `${p}fleet_events_total`,
      help: 'Fleet events, by kind and direction (published, received, queued while Redis is unavailable, dropped when the queue is full).',
      labelNames: ['kind', 'direction'],
      registers,
    }),
    fleetQueued: new Gauge({
      name: `${p}fleet_queued_events`,
      help: 'Fleet events accepted while Redis was unavailable and not published yet.',
      registers,
    }),
    fleetApplyDuration: new Histogram({
      name: `${p}fleet_apply_seconds`,
      help: "Seconds from a fleet event's acceptance on one proxy to its application on this one.",
      labelNames: ['kind'],
      buckets: FLEET_APPLY_BUCKETS,
      registers,
    }),
  };
  // Without `fleet` these have no sample, so an alert on them never fires for a proxy without it.
  metrics.fleetConnected.remove();
  metrics.fleetQueued.remove();
  metrics.buildInfo.set({ version: options.version, node: process.version }, 1);
  return metrics;
}

/** Names as scraped (without histogram suffixes), for dashboards and tests. */
export const METRIC_NAMES: readonly string[] = [
  'requests_total',
  'request_duration_seconds',
  'token_exchanges_total',
  'token_exchange_duration_seconds',
  'authorization_server_requests_total',
  'authorization_server_request_duration_seconds',
  'token_ttl_seconds',
  'token_remaining_ttl_seconds',
  'token_refreshes_total',
  'token_cache_lookups_total',
  'token_cache_entries',
  'token_exchange_queue_depth',
  'token_exchanges_in_flight',
  'token_ttl_capped_total',
  'mcp_requests_total',
  'step_up_total',
  'step_up_pending',
  'build_info',
  'revocations_total',
  'security_events_total',
  'websocket_connections',
  'websocket_connections_total',
  'streams_closed_total',
  'fleet_connected',
  'fleet_events_total',
  'fleet_queued_events',
  'fleet_apply_seconds',
].map((n) => `${METRIC_PREFIX}${n}`);

export type { ExchangeOutcome };
