import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Clock } from '../pipeline/clock.js';
import { ProxyError } from '../errors.js';
import type { Authorized, WithSubject } from '../auth/stage.js';
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
  if (req.method !== 'GET') throw new ProxyError('invalid_request', 'a WebSocket handshake is a GET request (RFC 6455 §4.1)');
  if (hasBody(req)) throw new ProxyError('invalid_request', 'a WebSocket handshake has no body');
  // Agents that cannot set headers (browsers) put tokens in Sec-WebSocket-Protocol, the query or a
  // cookie. Whatever carrier, a second copy of the user token would reach the upstream: refuse.
  const token = ctx.subject.token;
  if (carriesToken(req.headers, ctx.forwardPath, token)) {
    throw new ProxyError('invalid_request', 'the user token may only be sent in the configured token header', {
      detail: 'user token found in another header or in the URL',
    });
  }
}

/** Shorter tokens are not searched for: a few characters could match an unrelated header by chance. */
const MIN_SCANNED_TOKEN_LENGTH = 16;

function carriesToken(headers: IncomingHttpHeaders, path: string, token: string): boolean {
  if (token.length < MIN_SCANNED_TOKEN_LENGTH) return false;
  if (path.includes(token) || safeDecode(path).includes(token)) return true;
  for (const value of Object.values(headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value) ? value.some((v) => v.includes(token)) : value.includes(token)) return true;
  }
  return false;
}

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path.replace(/\+/g, ' '));
  } catch {
    return path;
  }
}

/**
 * README "WebSocket": unset, a connection closes when the delegated token that opened it expires;
 * 0 means no limit.
 */
export function lifetimeMs(ctx: Authorized, clock: Clock): number | undefined {
  const configured = ctx.route.config.websocket;
  const seconds = 'maxConnectionSeconds' in configured ? configured.maxConnectionSeconds : undefined;
  if (seconds === 0) return undefined;
  if (seconds !== undefined) return seconds * 1000;
  return Math.max(0, ctx.token.token.expiresAt - clock.now());
}
