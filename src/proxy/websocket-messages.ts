import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { RequestContext } from '../pipeline/context.js';
import { removeHopByHop } from './headers.js';
import type { HandshakeResult } from './websocket-handshake.js';

/** Headers for undici: it writes Host, Connection and Upgrade itself for an upgrade. */
export function handshakeHeaders(flat: readonly string[]): Record<string, string | string[]> {
  // `flat` comes from buildUpstreamHeaders (hop-by-hop, Host, Content-Length already dropped; the
  // delegated Authorization and X-Forwarded-* set); undici adds Connection/Upgrade for the upgrade.
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i] as string;
    const value = flat[i + 1] as string;
    if (name === 'transfer-encoding') continue;
    const seen = out[name];
    out[name] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value];
  }
  return out;
}

/** The upstream's 101 as the agent gets it: its headers (Sec-WebSocket-Accept, -Protocol, -Extensions) plus our request id. */
export function switchingProtocols(headers: IncomingHttpHeaders, requestId: string): string {
  let head = 'HTTP/1.1 101 Switching Protocols\r\n';
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name === 'x-request-id') continue;
    for (const v of Array.isArray(value) ? value : [value]) head += `${name}: ${v}\r\n`;
  }
  return `${head}x-request-id: ${requestId}\r\n\r\n`;
}

/** The upstream's refusal (401, 403 challenge, 5xx...) passed to the agent as it came. */
export function relayRefusal(ctx: RequestContext, result: Extract<HandshakeResult, { kind: 'response' }>): void {
  const { res } = ctx;
  if (res.socket === null || res.socket.destroyed) return;
  const headers = { ...result.headers };
  removeHopByHop(headers);
  delete headers['content-length'];
  delete headers['x-request-id'];
  res.once('finish', () => endSocket(res));
  res.writeHead(result.status, {
    ...headers,
    'content-length': result.body.length,
    'x-request-id': ctx.id,
    connection: 'close',
  });
  res.end(result.body);
}

/** After a refusal: flush, then close, without waiting for the agent's FIN (the server socket allows half-open). */
export function endSocket(res: ServerResponse): void {
  const socket = res.socket as Socket | null;
  if (socket === null) return;
  res.detachSocket(socket);
  socket.destroySoon();
}
