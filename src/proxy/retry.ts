import type { UpstreamHead } from './forwarder.js';
import type { RequestContext } from './context.js';
import type { StepUp } from '../step-up/step.js';

/** Why a request is sent upstream a second time; `prepare` readies the context for it. */
export interface RetryPlan {
  /** invalidated: upstream 401 on a cached token; step_up: approved upstream insufficient_scope challenge. */
  readonly reason: 'invalidated' | 'step_up';
  prepare(): Promise<void>;
}

export interface RetryDeps {
  /** Drops the cached token and gets a new one into `ctx.token`. */
  refreshToken(ctx: RequestContext): Promise<void>;
  /** Step-up on an upstream insufficient_scope challenge (route `stepUp.onChallenge`). */
  readonly stepUp?: Pick<StepUp, 'planChallenge'> | undefined;
}

/**
 * Decides, from the upstream's first answer, whether the request is worth one more attempt.
 * Upstream 401 on a token served from the cache: the upstream may know something the cache does
 * not (revocation, key rotation), so evict it and exchange once more (DESIGN.md step 7).
 * Upstream 403 insufficient_scope naming allow-listed scopes on a `stepUp.onChallenge` route: ask a
 * person, then retry with a one-call elevated token (DESIGN.md step 6). Any other 403 passes through.
 */
export function planRetry(ctx: RequestContext, head: UpstreamHead, deps: RetryDeps): RetryPlan | undefined {
  if (head.status === 401 && ctx.token?.result === 'hit') {
    return { reason: 'invalidated', prepare: () => deps.refreshToken(ctx) };
  }
  if (head.status === 403 && deps.stepUp) return deps.stepUp.planChallenge(ctx, head);
  return undefined;
}
