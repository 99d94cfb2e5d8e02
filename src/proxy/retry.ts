import type { Authorized } from '../auth/stage.js';
import type { McpAware } from '../mcp/state.js';
import type { RetryPlan, UpstreamHead } from '../pipeline/response-action.js';
import type { StepUp } from '../step-up/step.js';

export interface RetryDeps {
  /** Drops the cached token and gets a new one into `ctx.token`. */
  refreshToken(ctx: Authorized): Promise<void>;
  /** Step-up on an upstream insufficient_scope challenge (route `stepUp.onChallenge`). */
  readonly stepUp?: Pick<StepUp, 'planChallenge'> | undefined;
}

/**
 * Decides, from the upstream's first answer, whether the request is worth one more attempt.
 * Upstream 401 on a token served from the cache: the upstream may know something the cache does
 * not (revocation, key rotation), so evict it and exchange once more (docs/design.md "Request pipeline" step 7).
 * Upstream 403 insufficient_scope naming allow-listed scopes on a `stepUp.onChallenge` route: ask a
 * person, then retry with a one-call elevated token (docs/design.md "Request pipeline" step 6). Any other 403 passes through.
 */
export function planRetry(ctx: Authorized & McpAware, head: UpstreamHead, deps: RetryDeps): RetryPlan | undefined {
  if (head.status === 401 && ctx.token.result === 'hit') {
    return { reason: 'invalidated', prepare: () => deps.refreshToken(ctx) };
  }
  if (head.status === 403 && deps.stepUp) return deps.stepUp.planChallenge(ctx, head);
  return undefined;
}
