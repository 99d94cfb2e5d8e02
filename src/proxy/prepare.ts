import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
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

/**
 * What the pipeline reads: the steps, and the logger of the requests' and upgrades' lines. One object,
 * made once (app.ts), shared by the HTTP pipeline and the WebSocket upgrade.
 */
export interface PipelineDeps {
  readonly logger: Logger;
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
  /** Refuses revoked users' old tokens (docs/revocation.md), when `revocation` is configured. */
  readonly revocation?: { check(subject: SubjectInfo): void } | undefined;
  /** Per-route label children, made once per route object. */
  readonly routeMetrics: (route: Route) => RouteChildren;
  /** MCP routes' compiled policies and users' grants, made once (app.ts); else per request. */
  readonly mcpPolicies?: McpPolicies | undefined;
}

/** The context the HTTP pipeline and the WebSocket upgrade forward with. */
export type Prepared = Authorized & McpAware;

/**
 * One pipeline step: reads the stage the steps before it produced and adds its own fields; throws a
 * ProxyError to refuse; returns a promise only when it has to wait (an exchange, a body, local
 * verification, an approval).
 */
export type Step = (ctx: AnyStage, deps: PipelineDeps) => Promise<unknown> | undefined;

/** A step that reads stage `S`: its place in a list, after the steps that produce `S`, is what guarantees it. */
export function step<S extends RequestContext>(
  run: (ctx: S, deps: PipelineDeps) => Promise<unknown> | undefined,
): Step {
  return run as unknown as Step;
}

/**
 * Pipeline steps 2-6 (docs/design.md "Request pipeline"), in order: everything up to and including
 * the delegated token. The WebSocket upgrade runs the same list (websocket-upgrade.ts adds its own
 * checks once the user token is out of the request).
 */
export const STEPS: readonly Step[] = [
  step(checkHost), // 2. a host this listener serves (DNS rebinding, docs/security.md), before anything else
  step(matchRoute), // 2. route
  step(takeSubject), // 3. subject: taken out of the request with every other credential carrier
  step(verifySubject), // 3. ...verified locally, when configured, before any exchange
  step(enforcePolicy), // 4. policy (MCP routes)
  step(token), // 5. token: the cache, else one exchange
  step(applyStepUp), // 6. step-up (rules: wait for a person, then a one-call token)
];

/** `steps` with `added` right after `anchor` (which must be one of them). */
export function withStep(steps: readonly Step[], added: Step, anchor: Step): readonly Step[] {
  const at = steps.indexOf(anchor);
  if (at === -1) throw new Error('anchor step not in the list');
  return [...steps.slice(0, at + 1), added, ...steps.slice(at + 1)];
}

/**
 * Runs `steps` in order on the context, which they turn into `Prepared`. A step's promise is awaited
 * before the next step; a list whose steps return none (a warm cache hit) runs within this call and
 * returns the context itself, no promise.
 */
export function prepare(
  ctx: RequestContext,
  deps: PipelineDeps,
  steps: readonly Step[] = STEPS,
  from = 0,
): Prepared | Promise<Prepared> {
  for (let i = from; i < steps.length; i++) {
    const waiting = (steps[i] as Step)(ctx, deps);
    if (waiting !== undefined) return waiting.then(() => prepare(ctx, deps, steps, i + 1));
  }
  return ctx as Prepared;
}

function checkHost(ctx: RequestContext, deps: PipelineDeps): undefined {
  deps.runtime().hosts.check(ctx.req.headers.host, ctx.req.headers.origin);
}

function matchRoute(ctx: RequestContext, deps: PipelineDeps): undefined {
  const path = checkRequestTarget(ctx.req.method, ctx.req.url);
  const match = deps.runtime().routes.match(ctx.req.headers.host, path);
  if (!match) throw new ProxyError('no_route', 'no route matches this request');
  const routed = ctx as Building<Routed>;
  routed.route = match.route;
  routed.forwardPath = match.forwardPath;
  routed.scopes = match.route.scopes;
  routed.cacheable = true;
}

/**
 * Step 3, no I/O: the user token taken out of the request (before anything else can forward it),
 * not revoked, every other credential carrier removed, and the token in no other place.
 */
export function takeSubject(ctx: Routed, deps: PipelineDeps): undefined {
  const { req } = ctx;
  const runtime = deps.runtime();
  const header = runtime.subjectHeader;
  ctx.presentedCredentials = req.headers[header] !== undefined;
  const value = takeCredentialHeader(req.headers, req.rawHeaders, header);
  const withSubject = ctx as Building<WithSubject>;
  withSubject.subject = subjectOf(req.socket as MemoSocket, value, deps.tokens);
  deps.revocation?.check(withSubject.subject); // iat after any revocation of this user
  stripCredentials(req.headers, credentialStripFor(ctx.route, runtime.config));
  refuseUserTokenElsewhere(withSubject); // target, other headers, cookies
}

function verifySubject(ctx: WithSubject, deps: PipelineDeps): Promise<unknown> | undefined {
  return deps.subjectVerifier?.verify(ctx.subject.token);
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

/** Step 5: the cached token without a promise, else the exchange. */
function token(ctx: WithSubject, deps: PipelineDeps): Promise<unknown> | undefined {
  return cachedToken(ctx, deps) === undefined ? obtainToken(ctx, deps) : undefined;
}

/** Step 6, on routes with step-up rules only (no promise for the others). */
function applyStepUp(ctx: Prepared, deps: PipelineDeps): Promise<unknown> | undefined {
  return deps.stepUp?.hasRules(ctx.route) ? deps.stepUp.apply(ctx) : undefined;
}

/** Step 5 on a warm cache: the token without waiting, or undefined when one must be exchanged. */
function cachedToken(
  ctx: WithSubject,
  deps: Pick<PipelineDeps, 'tokens' | 'clock' | 'routeMetrics'>,
): Authorized | undefined {
  if (!ctx.cacheable) return undefined;
  const token = deps.tokens.cached(ctx.route, ctx.subject, ctx.scopes);
  if (token === undefined) return undefined;
  return withToken(ctx, token, deps);
}

/** Step 5: the delegated token from the cache or one exchange, into `ctx.token`. */
export async function obtainToken(
  ctx: WithSubject,
  deps: Pick<PipelineDeps, 'tokens' | 'clock' | 'routeMetrics'>,
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
  deps: Pick<PipelineDeps, 'clock' | 'routeMetrics'>,
): Authorized {
  const authorized = ctx as Building<Authorized>;
  authorized.token = token;
  const remaining = Math.max(0, (token.token.expiresAt - deps.clock.now()) / 1000);
  deps.routeMetrics(ctx.route).tokenRemainingTtl.observe(remaining);
  return authorized;
}

/** Drops the cached token the upstream refused and gets a new one (one exchange). */
export async function refreshToken(
  ctx: Authorized,
  deps: Pick<PipelineDeps, 'tokens' | 'clock' | 'routeMetrics'>,
): Promise<void> {
  const current = ctx.token;
  deps.tokens.cache.invalidate(current.key, current.token);
  await obtainToken(ctx, deps);
}

/** The context at whatever stage it reached: what failing and recording a request can rely on. */
export type AnyStage = RequestContext & Partial<Prepared>;
