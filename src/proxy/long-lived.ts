import { mediaTypeOf } from '../http/media-type.js';
import type { Clock } from '../pipeline/clock.js';
import { addLogFields } from '../pipeline/context.js';
import type { EndableResponse, UpstreamHead } from '../pipeline/response-action.js';
import type { OpenStreams } from './open-streams.js';
import type { Prepared } from './prepare.js';
import { streamLifetime } from './stream-lifetime.js';

/** RFC 9110 §8.3: the media type, case-insensitive, before any parameter. */

/**
 * A response that stays open until someone ends it (docs/revocation.md "Open streams"): a 200
 * `text/event-stream` answer. On an MCP route only the transport's long-lived streams count (the
 * GET stream, a `subscriptions/listen` POST); other MCP POSTs answer over SSE too, and end with
 * their answer. Decided from the head and the policy's parsed method: nothing is allocated for the
 * responses that are not.
 */
export function isLongLived(ctx: Prepared, head: UpstreamHead): boolean {
  if (head.status !== 200) return false;
  const type = head.headers['content-type'];
  if (typeof type !== 'string') return false;
  // Most answers are not text/...: one character code decides without reading the media type.
  const first = type.charCodeAt(0) | 0x20;
  if (first !== 0x74 /* t */ && first !== 0x20 /* SP */ && first !== 0x29 /* HTAB */) return false;
  if (mediaTypeOf(type) !== 'text/event-stream') return false;
  if (ctx.route.mcp === undefined || ctx.req.method === 'GET') return true;
  const decisions = ctx.mcp?.decisions;
  return decisions !== undefined && decisions.length === 1 && decisions[0]?.method === 'subscriptions/listen';
}

/**
 * Tracks an SSE response whose head has just been passed on, until the client's response closes:
 * revocable by user, and on an MCP route ended when its lifetime is over (`mcp.maxStreamSeconds`,
 * docs/mcp.md "Stream lifetime"). Other routes' streams have no lifetime limit (revocation only).
 */
export function trackSse(ctx: Prepared, response: EndableResponse, streams: OpenStreams, clock: Clock): void {
  const { res, route } = ctx;
  if (res.closed) return;
  const lifetime = route.mcp === undefined ? undefined : streamLifetime(route.mcp.maxStreamSeconds, ctx, clock);
  const stream = streams.open({
    kind: 'sse',
    route: route.name,
    subject: ctx.subject,
    lifetimeMs: lifetime?.ms,
    lifetimeReason: lifetime?.reason ?? 'max_lifetime',
    closer: {
      closeStream(reason) {
        // On the access line written when the response closes (docs/operations.md "Logs").
        addLogFields(ctx, { closeReason: reason });
        response.endResponse();
      },
    },
  });
  if (stream !== undefined) res.once('close', () => stream.ended());
}
