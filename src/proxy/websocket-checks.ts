import type { IncomingMessage } from 'node:http';
import type { Authorized, WithSubject } from '../auth/stage.js';
import { ProxyError } from '../errors.js';
import type { Clock } from '../pipeline/clock.js';
import { hasBody } from '../pipeline/request-body.js';
import { type StreamLifetime, streamLifetime } from './stream-lifetime.js';

/** RFC 6455 §4.1: a WebSocket opening handshake is a GET with `Upgrade: websocket`. */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return typeof upgrade === 'string' && upgrade.split(',').some((p) => p.trim().toLowerCase() === 'websocket');
}

/** Refuses what must not reach the upstream, before any exchange. */
export function checkUpgrade(ctx: WithSubject): undefined {
  const websocket = ctx.route.config.websocket;
  if (!websocket.enabled) {
    throw new ProxyError('websocket_disabled', 'WebSocket upgrades are not enabled on this route');
  }
  const { req } = ctx;
  if (req.method !== 'GET')
    throw new ProxyError('invalid_request', 'a WebSocket handshake is a GET request (RFC 6455 §4.1)');
  if (hasBody(req)) throw new ProxyError('invalid_request', 'a WebSocket handshake has no body');
  // A second copy of the user token (Sec-WebSocket-Protocol, query, cookie: where agents that
  // cannot set headers put it) is refused in step 3, before this check (user-token-elsewhere.ts).
}

/** docs/websocket.md "Lifetime": `maxConnectionSeconds`, by the rule every long-lived response follows. */
export function websocketLifetime(ctx: Authorized, clock: Clock): StreamLifetime {
  const configured = ctx.route.config.websocket;
  return streamLifetime('maxConnectionSeconds' in configured ? configured.maxConnectionSeconds : undefined, ctx, clock);
}
