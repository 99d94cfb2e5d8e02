import type { Authorized } from '../auth/stage.js';
import type { Clock } from '../pipeline/clock.js';

export interface StreamLifetime {
  /** Milliseconds from now; undefined: no limit. */
  readonly ms: number | undefined;
  /** `expired`: the limit is the delegated token's expiry; `max_lifetime`: a configured limit. */
  readonly reason: 'expired' | 'max_lifetime';
}

const UNLIMITED: StreamLifetime = Object.freeze({ ms: undefined, reason: 'max_lifetime' });

/**
 * How long a long-lived response (a WebSocket connection, an MCP stream) may stay open, one rule
 * for both (docs/websocket.md "Lifetime", docs/mcp.md "Stream lifetime"): `configuredSeconds`
 * unset, until the delegated token that opened it expires; 0, no limit; a positive value, that
 * long (it replaces the token's expiry: the operator chose it for this route).
 */
export function streamLifetime(configuredSeconds: number | undefined, ctx: Authorized, clock: Clock): StreamLifetime {
  if (configuredSeconds === 0) return UNLIMITED;
  if (configuredSeconds !== undefined) return { ms: configuredSeconds * 1000, reason: 'max_lifetime' };
  return { ms: Math.max(0, ctx.token.token.expiresAt - clock.now()), reason: 'expired' };
}
