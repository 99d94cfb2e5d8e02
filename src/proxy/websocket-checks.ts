import type { IncomingMessage } from 'node:http';
import type { Authorized, WithSubject } from '../auth/stage.js';
import { ProxyError } from '../errors.js';
import type { Clock } from '../pipeline/clock.js';
import { hasBody } from '../pipeline/request-body.js';

/** RFC 6455 §4.1: a WebSocket opening handshake is a GET with `Upgrade: websocket`. */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return typeof upgrade === 'string' && upgrade.split(',').some((p) => p.trim().toLowerCase() === 'websocket');
}

/** Refuses what must not reach the upstream, before any exchange. */
export function checkUpgrade(ctx: WithSubject): void {
  const websocket = ctx.route.config.websocket;
  if (!websocket.enabled) {
    throw new ProxyError('websocket_disabled', 'WebSocket upgrades are not enabled on this route');
  }
  const { req } = ctx;
  if (req.method !== 'GET')
    throw new ProxyError('invalid_request', 'a WebSocket handshake is a GET request (RFC 6455 §4.1)');
  if (hasBody(req)) throw new ProxyError('invalid_request', 'a WebSocket handshake has no body');
  // A second copy of the user token (Sec-WebSocket-Protocol, query, cookie: where agents that
  // cannot set headers put it) was refused by the shared admit step (user-token-elsewhere.ts).
}

/**
 * docs/websocket.md: unset, a connection closes when the delegated token that opened it expires;
 * 0 means no limit.
 */
export function lifetimeMs(ctx: Authorized, clock: Clock): number | undefined {
  const configured = ctx.route.config.websocket;
  const seconds = 'maxConnectionSeconds' in configured ? configured.maxConnectionSeconds : undefined;
  if (seconds === 0) return undefined;
  if (seconds !== undefined) return seconds * 1000;
  return Math.max(0, ctx.token.token.expiresAt - clock.now());
}
