import type { Clock } from '../auth/clock.js';
import type { SubjectVerifier } from '../auth/subject-verify.js';
import { takeSubjectToken } from '../auth/subject-token.js';
import type { SubjectInfo, TokenService } from '../auth/token-service.js';
import { ProxyError } from '../errors.js';
import { enforcePolicy } from '../mcp/policy-step.js';
import type { Metrics } from '../observability/metrics.js';
import { checkRequestTarget } from '../routing/request-target.js';
import type { RouteTable } from '../routing/route-table.js';
import type { StepUp } from '../step-up/step.js';
import type { RequestContext } from './context.js';
import { credentialStripFor, type StripConfig, stripCredentials } from './strip-credentials.js';
import { refuseUserTokenElsewhere } from './user-token-elsewhere.js';

/** What the steps before forwarding read; the HTTP pipeline and the WebSocket upgrade share them. */
export interface PrepareDeps {
  readonly runtime: () => { readonly routes: RouteTable; readonly subjectHeader: string; readonly config: StripConfig };
  readonly tokens: TokenService;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly subjectVerifier?: SubjectVerifier | undefined;
  readonly stepUp?: StepUp | undefined;
  /** Refuses revoked users' old tokens (README "Revocation"), when `revocation` is configured. */
  readonly revocation?: { check(subject: SubjectInfo): void } | undefined;
}

/**
 * Pipeline steps 2-6 (README "How a request flows"), in order: everything up to and including the
 * delegated token, so a request and a WebSocket handshake pass the same checks.
 */
export async function prepare(ctx: RequestContext, deps: PrepareDeps): Promise<void> {
  admit(ctx, deps);
  await authorize(ctx, deps);
}

/** Steps 2-3, no I/O: route, and the user token taken out of the request with every other credential carrier. */
export function admit(ctx: RequestContext, deps: Pick<PrepareDeps, 'runtime' | 'tokens' | 'revocation'>): void {
  const runtime = deps.runtime();
  matchRoute(ctx, runtime.routes); // 2. route
  takeSubject(ctx, runtime.subjectHeader, deps.tokens); // 3. subject
  deps.revocation?.check(ctx.subject!); // 3. ...not revoked (iat after any revocation of this user)
  stripCredentials(ctx.req.headers, credentialStripFor(ctx.route!, runtime.config)); // 3. ...and other credential carriers
  refuseUserTokenElsewhere(ctx); // 3. ...and the user token in no other place (target, header, cookie)
}

/** Steps 3 (local verification) to 6: policy, token, step-up. */
export async function authorize(ctx: RequestContext, deps: PrepareDeps): Promise<void> {
  if (deps.subjectVerifier) await deps.subjectVerifier.verify(ctx.subject!.token); // 3. ...verified locally before any exchange
  await enforcePolicy(ctx, deps); // 4. policy (MCP routes)
  await obtainToken(ctx, deps); // 5. token
  await deps.stepUp?.apply(ctx); // 6. step-up (rules: wait for a person, then a one-call token)
}

function matchRoute(ctx: RequestContext, routes: RouteTable): void {
  const path = checkRequestTarget(ctx.req.method, ctx.req.url);
  const match = routes.match(ctx.req.headers.host, path);
  if (!match) throw new ProxyError('no_route', 'no route matches this request');
  ctx.route = match.route;
  ctx.forwardPath = match.forwardPath;
  ctx.scopes = match.route.scopes;
}

function takeSubject(ctx: RequestContext, header: string, tokens: TokenService): void {
  ctx.presentedCredentials = ctx.req.headers[header] !== undefined;
  // Removed from the request here, before anything else can forward it.
  const token = takeSubjectToken(ctx.req.headers, ctx.req.rawHeaders, header);
  ctx.subject = tokens.describe(token);
}

/** Step 5: the delegated token from the cache or one exchange, into `ctx.token`. */
export async function obtainToken(ctx: RequestContext, deps: Pick<PrepareDeps, 'tokens' | 'metrics' | 'clock'>): Promise<void> {
  const route = ctx.route!;
  ctx.token = await deps.tokens.obtain({
    route,
    subject: ctx.subject!,
    scopes: ctx.scopes,
    log: ctx.log,
    cacheable: ctx.cacheable,
  });
  deps.metrics.tokenRemainingTtl.observe(
    { route: route.name },
    Math.max(0, (ctx.token.token.expiresAt - deps.clock.now()) / 1000),
  );
}

/** Drops the cached token the upstream refused and gets a new one (one exchange). */
export async function refreshToken(ctx: RequestContext, deps: Pick<PrepareDeps, 'tokens' | 'metrics' | 'clock'>): Promise<void> {
  const current = ctx.token!;
  deps.tokens.cache.invalidate(current.key, current.token);
  await obtainToken(ctx, deps);
}
