import type { ServerResponse } from 'node:http';
import type { ProxyError } from '../errors.js';
import { sendJson } from '../http/send-json.js';

function quote(value: string): string {
  return `"${value.replace(/["\\]/g, '')}"`;
}

/** RFC 6750 §3 challenge for 401/403. */
export function bearerChallenge(err: ProxyError, hasToken: boolean): string {
  // RFC 9728 §5.1: where the agent finds the resource's metadata (MCP basic/authorization).
  const metadata = err.resourceMetadata === undefined ? '' : `, resource_metadata=${quote(err.resourceMetadata)}`;
  // RFC 6750 §3.1: a request without credentials gets a bare challenge, no error code.
  if (err.status === 401 && !hasToken) return `Bearer realm="delegate-proxy"${metadata}`;
  let value = `Bearer realm="delegate-proxy", error=${quote(err.code)}`;
  if (err.scope && err.scope.length > 0) value += `, scope=${quote(err.scope.join(' '))}`;
  return value + metadata;
}

/** 403s that no token would change: no Bearer challenge (RFC 6750 §3 is about the token). */
const NOT_TOKEN_PROBLEMS: ReadonlySet<string> = new Set(['websocket_disabled', 'host_not_allowed']);

/**
 * Answers with the RFC 6750 / RFC 8693-style JSON error body. Only the public description goes out;
 * detail and cause stay in the logs.
 */
export function sendError(
  res: ServerResponse,
  err: ProxyError,
  options: { requestId: string; hasToken: boolean },
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: Record<string, string> = { 'x-request-id': options.requestId, ...err.headers };
  if (err.status === 401 || (err.status === 403 && !NOT_TOKEN_PROBLEMS.has(err.code)))
    headers['www-authenticate'] = bearerChallenge(err, options.hasToken);
  if (err.retryAfterSeconds !== undefined) headers['retry-after'] = String(Math.ceil(err.retryAfterSeconds));
  sendJson(res, err.status, err.body ?? { error: err.code, error_description: err.description }, headers);
}
