import type { UpstreamHead } from './forwarder.js';
import type { RequestContext } from './context.js';

/** Why a request is sent upstream a second time; `prepare` readies the context for it. */
export interface RetryPlan {
  readonly reason: 'invalidated';
  prepare(): Promise<void>;
}

export interface RetryDeps {
  /** Drops the cached token and gets a new one into `ctx.token`. */
  refreshToken(ctx: RequestContext): Promise<void>;
}

/**
 * Decides, from the upstream's first answer, whether the request is worth one more attempt.
 * Upstream 401 on a token served from the cache: the upstream may know something the cache does
 * not (revocation, key rotation), so evict it and exchange once more (DESIGN.md step 7).
 */
export function planRetry(ctx: RequestContext, head: UpstreamHead, deps: RetryDeps): RetryPlan | undefined {
  if (head.status === 401 && ctx.token?.result === 'hit') {
    return { reason: 'invalidated', prepare: () => deps.refreshToken(ctx) };
  }
  return undefined;
}
