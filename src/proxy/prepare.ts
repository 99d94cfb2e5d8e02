import type { IncomingMessage } from 'node:http';
import type { Authorized, WithSubject } from '../auth/stage.js';
import { bearerTokenOf, takeCredentialHeader } from '../auth/subject-token.js';
import type { SubjectVerifier } from '../auth/subject-verify.js';
import type { SubjectInfo, TokenService } from '../auth/token-service.js';
import { ProxyError } from '../errors.js';
import type { McpPolicies } from '../mcp/policies.js';
import { enforcePolicy } from '../mcp/policy-step.js';
import type { McpAware } from '../mcp/state.js';
import type { Metrics } from '../observability/metrics.js';
import type { RouteChildren } from '../observability/route-metrics.js';
import type { Clock } from '../pipeline/clock.js';
import type { Building, RequestContext } from '../pipeline/context.js';
import type { HostAllowList } from '../routing/allowed-hosts.js';
import { checkRequestTarget } from '../routing/request-target.js';
import type { Route, RouteTable } from '../routing/route-table.js';
import type { Routed } from '../routing/stage.js';
import type { StepUp } from '../step-up/step.js';
import { credentialStripFor, type StripConfig, stripCredentials } from './strip-credentials.js';
import { refuseUserTokenElsewhere } from './user-token-elsewhere.js';

/** What the steps before forwarding read; the HTTP pipeline and the WebSocket upgrade share them. */
export interface PrepareDeps {
  readonly runtime: () => {
    readonly routes: RouteTable;
    readonly hosts: HostAllowList;
    readonly subjectHeader: string;
    readonly config: StripConfig;
  };
  readonly tokens: TokenService;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly subjectVerifier?: SubjectVerifier | undefined;
  readonly stepUp?: StepUp | undefined;
  /** Refuses revoked users' old tokens (README "Revocation"), when `revocation` is configured. */
  readonly revocation?: { check(subject: SubjectInfo): void } | undefined;
  /** Per-route label children (the HTTP pipeline makes them once); else labels per observation. */
  readonly routeMetrics?: ((route: Route) => RouteChildren) | undefined;
  /** MCP routes' compiled policies and users' grants, made once (app.ts); else per request. */
  readonly mcpPolicies?: McpPolicies | undefined;
}

/** The context the HTTP pipeline and the WebSocket upgrade forward with. */
export type Prepared = Authorized & McpAware;

/**
 * Pipeline steps 2-6 (docs/design.md "Request pipeline"), in order: everything up to and
 * including the delegated token, so a request and a WebSocket handshake pass the same checks.
 * Synchronous on a warm cache (no promise): a Promise only when a step has to wait.
 */
export function prepare(ctx: RequestContext, deps: PrepareDeps): Prepared | Promise<Prepared> {
  return authorize(admit(ctx, deps), deps);
}

/**
 * Steps 2-3, no I/O: Host and Origin checked against the names the listener serves (before any
 * other step: DNS rebinding, docs/security.md), route, and the user token taken out of the request
 * with every other credential carrier.
 */
export function admit(ctx: RequestContext, deps: Pick<PrepareDeps, 'runtime' | 'tokens' | 'revocation'>): WithSubject {
  const runtime = deps.runtime();
  runtime.hosts.check(ctx.req.headers.host, ctx.req.headers.origin); // 2. a host this listener serves
  const routed = matchRoute(ctx, runtime.routes); // 2. route
  const withSubject = takeSubject(routed, runtime.subjectHeader, deps.tokens); // 3. subject
  deps.revocation?.check(withSubject.subject); // 3. ...not revoked (iat after any revocation of this user)
  stripCredentials(ctx.req.headers, credentialStripFor(withSubject.route, runtime.config)); // 3. ...and other credential carriers
  refuseUserTokenElsewhere(withSubject); // 3. ...and the user token in no other place (target, header, cookie)
  return withSubject;
}

/**
 * Steps 3 (local verification) to 6: policy, token, step-up. A route with neither local
 * verification nor step-up rules and a token in the cache is served without waiting; on an MCP
 * route too, once its POST body is in (the one thing the policy waits for).
 */
export function authorize(ctx: WithSubject & McpAware, deps: PrepareDeps): Prepared | Promise<Prepared> {
  if (deps.subjectVerifier === undefined && !(deps.stepUp?.hasRules(ctx.route) ?? false)) {
    if (ctx.route.mcp === undefined) return tokenFor(ctx, deps);
    const policed = enforcePolicy(ctx, deps); // 4. policy (MCP routes)
    return policed === undefined ? tokenFor(ctx, deps) : policed.then(() => tokenFor(ctx, deps));
  }
  return authorizeWaiting(ctx, deps);
}

/** Step 5: the cached token without a promise, else the exchange. */
function tokenFor(ctx: WithSubject, deps: PrepareDeps): Prepared | Promise<Prepared> {
  return cachedToken(ctx, deps) ?? obtainToken(ctx, deps);
}

async function authorizeWaiting(ctx: WithSubject & McpAware, deps: PrepareDeps): Promise<Prepared> {
  if (deps.subjectVerifier) await deps.subjectVerifier.verify(ctx.subject.token); // 3. ...verified locally before any exchange
  await enforcePolicy(ctx, deps); // 4. policy (MCP routes)
  const authorized = await obtainToken(ctx, deps); // 5. token
  await deps.stepUp?.apply(authorized); // 6. step-up (rules: wait for a person, then a one-call token)
  return authorized;
}

function matchRoute(ctx: RequestContext, routes: RouteTable): Routed {
  const path = checkRequestTarget(ctx.req.method, ctx.req.url);
  const match = routes.match(ctx.req.headers.host, path);
  if (!match) throw new ProxyError('no_route', 'no route matches this request');
  const routed = ctx as Building<Routed>;
  routed.route = match.route;
  routed.forwardPath = match.forwardPath;
  routed.scopes = match.route.scopes;
  routed.cacheable = true;
  return routed;
}

function takeSubject(ctx: Routed, header: string, tokens: TokenService): WithSubject {
  const { req } = ctx;
  ctx.presentedCredentials = req.headers[header] !== undefined;
  // Removed from the request here, before anything else can forward it.
  const value = takeCredentialHeader(req.headers, req.rawHeaders, header);
  const withSubject = ctx as Building<WithSubject>;
  withSubject.subject = subjectOf(req.socket as MemoSocket, value, tokens);
  return withSubject;
}

/** The last token header value seen on a connection, and what it described. */
const LAST_SUBJECT = Symbol('delegate-proxy.last-subject');
type MemoSocket = IncomingMessage['socket'] & {
  [LAST_SUBJECT]?: { readonly value: string; readonly subject: SubjectInfo };
};

/**
 * The subject of a token header value. An agent's keep-alive connection usually carries one user's
 * token request after request: the same header value as the connection's previous request reuses
 * that request's subject (validated, hashed and decoded already; it is immutable and derived from
 * the value alone) instead of hashing it again. Only values that came on this same connection, from
 * the same client, are compared. Expiry and revocation are still checked per request (steps 3 and 5).
 */
function subjectOf(socket: MemoSocket, value: string, tokens: TokenService): SubjectInfo {
  const last = socket[LAST_SUBJECT];
  if (last !== undefined && last.value === value) return last.subject;
  const subject = tokens.describe(bearerTokenOf(value));
  socket[LAST_SUBJECT] = { value, subject };
  return subject;
}

/** Step 5 on a warm cache: the token without waiting, or undefined when one must be exchanged. */
function cachedToken(
  ctx: WithSubject,
  deps: Pick<PrepareDeps, 'tokens' | 'metrics' | 'clock' | 'routeMetrics'>,
): Authorized | undefined {
  if (!ctx.cacheable) return undefined;
  const token = deps.tokens.cached(ctx.route, ctx.subject, ctx.scopes);
  if (token === undefined) return undefined;
  return withToken(ctx, token, deps);
}

/** Step 5: the delegated token from the cache or one exchange, into `ctx.token`. */
export async function obtainToken(
  ctx: WithSubject,
  deps: Pick<PrepareDeps, 'tokens' | 'metrics' | 'clock' | 'routeMetrics'>,
): Promise<Authorized> {
  const token = await deps.tokens.obtain({
    route: ctx.route,
    subject: ctx.subject,
    scopes: ctx.scopes,
    log: ctx.log,
    cacheable: ctx.cacheable,
  });
  return withToken(ctx, token, deps);
}

function withToken(
  ctx: WithSubject,
  token: Authorized['token'],
  deps: Pick<PrepareDeps, 'metrics' | 'clock' | 'routeMetrics'>,
): Authorized {
  const authorized = ctx as Building<Authorized>;
  authorized.token = token;
  const remaining = Math.max(0, (token.token.expiresAt - deps.clock.now()) / 1000);
  if (deps.routeMetrics) deps.routeMetrics(ctx.route).tokenRemainingTtl.observe(remaining);
  else deps.metrics.tokenRemainingTtl.observe({ route: ctx.route.name }, remaining);
  return authorized;
}

/** Drops the cached token the upstream refused and gets a new one (one exchange). */
export async function refreshToken(
  ctx: Authorized,
  deps: Pick<PrepareDeps, 'tokens' | 'metrics' | 'clock' | 'routeMetrics'>,
): Promise<void> {
  const current = ctx.token;
  deps.tokens.cache.invalidate(current.key, current.token);
  await obtainToken(ctx, deps);
}

/** The context at whatever stage it reached: what failing and recording a request can rely on. */
export type AnyStage = RequestContext & Partial<Prepared>;
