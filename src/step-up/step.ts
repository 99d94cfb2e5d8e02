import { hash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { ActorTokenSource } from '../auth/actor-token.js';
import { peekJwtClaims } from '../auth/jwt-claims.js';
import type { Authorized } from '../auth/stage.js';
import type { TokenService } from '../auth/token-service.js';
import { ProxyError } from '../errors.js';
import { mediaTypeOf } from '../http/media-type.js';
import type { McpAware } from '../mcp/state.js';
import type { Metrics, StepUpOutcome } from '../observability/metrics.js';
import type { Clock } from '../pipeline/clock.js';
import { addLogFields } from '../pipeline/context.js';
import { hasBody, readBody } from '../pipeline/request-body.js';
import type { RetryPlan, UpstreamHead } from '../pipeline/response-action.js';
import { normalizeScopes, type Route } from '../routing/route-table.js';
import type { ApprovalResult, ApprovalService, PendingApproval } from './approvals.js';
import { insufficientScope } from './bearer-challenge.js';
import { stepUpDenial } from './denial.js';
import { HeldApprovals, inputRequiredAnswer, type McpCall, mcpCallOf } from './input-required.js';
import { compileStepUp, matchRules } from './rules.js';

// biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
const CONTROL_RUNS = /[\u0000-\u001f\u007f]+/g;

/** The agent's justification for the approver (optional, untrusted). */
export const REASON_HEADER = 'x-step-up-reason';
const MAX_REASON_LENGTH = 500;
/** A rule-triggered step-up approves exact bytes, so the body is read (up to this) before asking. */
export const STEP_UP_MAX_BODY_BYTES = 1024 * 1024;
const EMPTY = Buffer.alloc(0);

export interface StepUpDeps {
  /** Undefined when the config has no top-level `stepUp` (every step-up is then refused). */
  readonly approvals: ApprovalService | undefined;
  readonly tokens: TokenService;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly actor: ActorTokenSource | undefined;
  /** The approval page as agents reach it (`callbackBaseUrl` + `/step-up`), for `mcpMode: input-required`. */
  readonly approvalPageUrl?: string | undefined;
}

type Trigger = 'rule' | 'challenge';

/**
 * Pipeline step 6 (docs/design.md "Request pipeline" step 6) and its `onChallenge` retry plan. A person approves one
 * call; only then is a token with the elevated scope exchanged, for that call only (never cached).
 */
export class StepUp {
  readonly #d: StepUpDeps;
  /** Approvals answered as MCP input requests, waiting for their retry (`mcpMode: input-required`). */
  readonly #held: HeldApprovals;

  constructor(deps: StepUpDeps) {
    this.#d = deps;
    this.#held = new HeldApprovals(deps.clock);
  }

  /** The route has step-up rules: step 6 may hold its requests (else a warm cache serves them at once). */
  hasRules(route: Route): boolean {
    return (route.config.stepUp?.rules.length ?? 0) > 0;
  }

  /** Step 6: when a rule of the route matches, hold the request until a person decides. */
  async apply(ctx: Authorized & McpAware): Promise<void> {
    const cfg = ctx.route.config.stepUp;
    if (cfg === undefined || cfg.rules.length === 0) return;
    const step = compileStepUp(cfg);
    const tools = ctx.mcp?.decisions.flatMap((d) => (d.tool === undefined ? [] : [d.tool]));
    if (step.hasToolRules && tools === undefined) {
      // Tool rules rely on the MCP policy step; without its parse, the tool is unknown: refuse.
      throw new ProxyError(
        'insufficient_scope',
        'this route needs approval for some MCP tools and the request could not be inspected',
        {
          detail: 'step-up tool rules but no MCP policy state on the request',
        },
      );
    }
    const input = { method: ctx.req.method ?? 'GET', path: ctx.forwardPath ?? '/', tools };
    let match = matchRules(step, { ...input, methodOverrides: methodOverridesOf(ctx.req, input.path, undefined) });
    if (
      match === undefined &&
      ctx.body === undefined &&
      isFormPost(ctx.req) &&
      step.rules.some((r) => r.methods !== undefined)
    ) {
      // Rails, Laravel and Symfony also take the method from a form's `_method` field.
      ctx.body = await readBody(ctx.req, STEP_UP_MAX_BODY_BYTES);
      match = matchRules(step, { ...input, methodOverrides: methodOverridesOf(ctx.req, input.path, ctx.body) });
    }
    if (match === undefined) return;
    const page = this.#d.approvalPageUrl;
    if (cfg.mcpMode === 'input-required' && page !== undefined) {
      const call = mcpCallOf(ctx.mcp, ctx.body);
      if (call !== undefined && (call.approvalId !== undefined || this.#held.hasRoom())) {
        const elevated = match.scopes.filter((s) => !ctx.scopes.includes(s));
        await this.#inputRequired(ctx, call, elevated, match.tools, page);
        return;
      }
    }
    // What is approved is what is forwarded: the body is read now and sent from memory.
    if (ctx.body === undefined && hasBody(ctx.req)) ctx.body = await readBody(ctx.req, STEP_UP_MAX_BODY_BYTES);
    await this.#elevate(
      ctx,
      match.scopes.filter((s) => !ctx.scopes.includes(s)),
      'rule',
      match.tools,
    );
  }

  /**
   * `onChallenge`: an upstream 403 `insufficient_scope` challenge naming only scopes the route
   * already has or may be stepped up to becomes a retry after approval; anything else passes through.
   */
  planChallenge(ctx: Authorized & McpAware, head: UpstreamHead): RetryPlan | undefined {
    const cfg = ctx.route.config.stepUp;
    if (head.status !== 403 || cfg === undefined || !cfg.onChallenge) return undefined;
    const asked = insufficientScope(head.headers['www-authenticate']);
    if (asked === undefined) return undefined;
    const step = compileStepUp(cfg);
    const elevated = asked.filter((s) => !ctx.scopes.includes(s));
    if (elevated.length === 0 || !elevated.every((s) => step.allowed.has(s))) {
      ctx.log.info(
        { challengeScopes: asked.slice(0, 20) },
        'upstream insufficient_scope challenge outside the step-up allow-list; passed through',
      );
      return undefined;
    }
    const tools = ctx.mcp?.decisions.flatMap((d) => (d.tool === undefined ? [] : [d.tool])) ?? [];
    return { reason: 'step_up', prepare: () => this.#elevate(ctx, elevated, 'challenge', tools) };
  }

  /**
   * `mcpMode: input-required`: a retry naming an approval issued for this very call (route, user,
   * tool and arguments) waits for its decision and, approved, passes once; anything else gets a
   * new approval and is answered with an input request instead of being forwarded.
   */
  async #inputRequired(
    ctx: Authorized & McpAware,
    call: McpCall,
    elevated: readonly string[],
    tools: readonly string[],
    page: string,
  ): Promise<void> {
    if (elevated.length === 0) return;
    const wanted = normalizeScopes([...ctx.scopes, ...elevated]);
    const approvals = this.#approvals(wanted);
    const sub = ctx.subject?.sub;
    const held =
      call.approvalId === undefined ? undefined : this.#held.take(call.approvalId, ctx.route.name, sub, call.digest);
    if (held !== undefined) {
      const started = performance.now();
      const result = await held.result;
      this.#record(ctx, held.approval, result, 'rule', tools, call.digest, started);
      if (result.outcome !== 'approved') throw stepUpDenial(ctx, result, wanted, timeoutOf(held.approval));
      await this.#exchangeElevated(ctx, wanted, elevated);
      return;
    }
    // Nobody waits on this request: only the approval's own timeout (or a decision) ends it.
    const { approval, result } = approvals.request(
      {
        route: ctx.route.name,
        scopes: [...elevated].sort(),
        sub,
        actor: this.#actorSub(),
        method: ctx.req.method ?? 'POST',
        path: ctx.forwardPath ?? '/',
        mcpTools: tools,
        bodySha256: call.digest,
        reason: reasonOf(ctx.req.headers[REASON_HEADER]),
        trigger: 'rule',
        requestId: ctx.id,
      },
      new AbortController().signal,
    );
    this.#held.add(approval, result, sub, call.digest);
    ctx.log.info({ approvalId: approval.id, scopes: approval.scopes }, 'step-up: answered with an input request');
    addLogFields(ctx, { stepUp: 'input_required', approvalId: approval.id });
    throw inputRequiredAnswer(call, approval, page);
  }

  #approvals(wanted: readonly string[]): ApprovalService {
    const { approvals } = this.#d;
    if (approvals === undefined) {
      throw new ProxyError(
        'insufficient_scope',
        'this request needs a person’s approval and no approval channel is configured',
        {
          detail: 'route has stepUp but the running config has no top-level stepUp (restart needed)',
          scope: wanted,
        },
      );
    }
    return approvals;
  }

  async #elevate(
    ctx: Authorized & McpAware,
    elevated: readonly string[],
    trigger: Trigger,
    tools: readonly string[],
  ): Promise<void> {
    if (elevated.length === 0) return;
    const route = ctx.route;
    const wanted = normalizeScopes([...ctx.scopes, ...elevated]);
    const approvals = this.#approvals(wanted);
    const bodySha256 = hash('sha256', ctx.body ?? EMPTY, 'hex');
    const withdraw = new AbortController();
    const onClose = (): void => {
      if (!ctx.res.writableFinished) withdraw.abort();
    };
    ctx.res.once('close', onClose);
    // The agent may have gone while the baseline token was obtained: 'close' has fired already.
    if (ctx.res.destroyed) onClose();
    const started = performance.now();
    const { approval, result: pending } = approvals.request(
      {
        route: route.name,
        scopes: [...elevated].sort(),
        sub: ctx.subject?.sub,
        actor: this.#actorSub(),
        method: ctx.req.method ?? 'GET',
        path: ctx.forwardPath ?? '/',
        mcpTools: tools,
        bodySha256,
        reason: reasonOf(ctx.req.headers[REASON_HEADER]),
        trigger,
        requestId: ctx.id,
      },
      withdraw.signal,
    );
    ctx.log.info({ approvalId: approval.id, scopes: approval.scopes, trigger }, 'step-up: waiting for a decision');
    let result: ApprovalResult;
    try {
      result = await pending;
    } finally {
      ctx.res.off('close', onClose);
    }
    this.#record(ctx, approval, result, trigger, tools, bodySha256, started);
    if (result.outcome !== 'approved') throw stepUpDenial(ctx, result, wanted, timeoutOf(approval));
    await this.#exchangeElevated(ctx, wanted, elevated);
  }

  /** The decision's metric, audit line and access-log fields. */
  #record(
    ctx: Authorized,
    approval: PendingApproval,
    result: ApprovalResult,
    trigger: Trigger,
    tools: readonly string[],
    bodySha256: string,
    started: number,
  ): void {
    const route = ctx.route;
    const outcome: StepUpOutcome = result.outcome === 'withdrawn' ? 'timeout' : result.outcome;
    this.#d.metrics.stepUp.inc({ route: route.name, outcome });
    ctx.log.info(
      {
        audit: 'step_up',
        approvalId: approval.id,
        decision: result.outcome,
        approver: 'approver' in result ? result.approver : undefined,
        via: 'via' in result ? result.via : undefined,
        withdrawnBecause: result.outcome === 'withdrawn' ? result.reason : undefined,
        detail: result.outcome === 'error' ? result.detail : undefined,
        scopes: approval.scopes,
        sub: approval.sub,
        actor: approval.actor,
        route: route.name,
        method: approval.method,
        path: approval.path.split('?')[0],
        mcpTools: tools.length > 0 ? tools : undefined,
        bodySha256,
        trigger,
        latencyMs: Math.round(performance.now() - started),
      },
      `step-up ${result.outcome}`,
    );
    addLogFields(ctx, { stepUp: result.outcome, approvalId: approval.id });
  }

  /** Route (or policy) scopes plus the approved ones, for this call only: never cached or shared. */
  async #exchangeElevated(ctx: Authorized, wanted: readonly string[], elevated: readonly string[]): Promise<void> {
    const route = ctx.route;
    ctx.scopes = wanted;
    ctx.cacheable = false;
    ctx.token = await this.#d.tokens.obtain({
      route,
      subject: ctx.subject,
      scopes: wanted,
      log: ctx.log,
      cacheable: false,
    });
    const granted = new Set(ctx.token.token.scopes);
    const missing = elevated.filter((s) => !granted.has(s));
    if (missing.length > 0) {
      throw new ProxyError('insufficient_scope', 'the authorization server did not grant the approved scope', {
        detail: `approved but not granted: ${missing.join(' ')}`,
        scope: wanted,
      });
    }
    this.#d.metrics.tokenRemainingTtl.observe(
      { route: route.name },
      Math.max(0, (ctx.token.token.expiresAt - this.#d.clock.now()) / 1000),
    );
  }

  #actorSub(): string | undefined {
    const token = this.#d.actor?.current()?.token;
    const sub = token === undefined ? undefined : peekJwtClaims(token)?.sub;
    return typeof sub === 'string' ? sub : undefined;
  }
}

function timeoutOf(approval: { readonly createdAt: number; readonly expiresAt: number }): number {
  return Math.round((approval.expiresAt - approval.createdAt) / 1000);
}

/** Headers with which frameworks (Rails, Laravel/Symfony, Express method-override, ...) replace a POST's method. */
const METHOD_OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override'] as const;

/**
 * Methods an upstream may act on instead of the request's own, so that method rules err towards
 * asking: method-override headers, a `_method` query or form field, and GET for HEAD (most
 * frameworks run the GET handler).
 */
export function methodOverridesOf(req: IncomingMessage, pathAndQuery: string, form: Buffer | undefined): string[] {
  const out: string[] = req.method === 'HEAD' ? ['GET'] : [];
  for (const name of METHOD_OVERRIDE_HEADERS) {
    const value = req.headers[name];
    for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) out.push(...v.split(','));
  }
  const q = pathAndQuery.indexOf('?');
  if (q !== -1) out.push(...new URLSearchParams(pathAndQuery.slice(q + 1)).getAll('_method'));
  if (form !== undefined) out.push(...new URLSearchParams(form.toString('utf8')).getAll('_method'));
  return out.map((m) => m.trim()).filter((m) => m !== '');
}

function isFormPost(req: IncomingMessage): boolean {
  return (
    req.method === 'POST' &&
    mediaTypeOf(req.headers['content-type']) === 'application/x-www-form-urlencoded' &&
    hasBody(req)
  );
}

/** Printable, single-line, bounded: it is shown to a person and written to logs. */
export function reasonOf(header: string | string[] | undefined): string | undefined {
  const raw = Array.isArray(header) ? header.join(' ') : header;
  if (raw === undefined) return undefined;
  // Node reads header bytes as latin1; agents send UTF-8.
  const value = Buffer.from(raw, 'latin1').toString('utf8');
  const clean = value.replace(CONTROL_RUNS, ' ').trim().slice(0, MAX_REASON_LENGTH);
  return clean === '' ? undefined : clean;
}
