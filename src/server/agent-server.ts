import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Config } from '../config/schema.js';
import { createServer } from '../http/node-http.js';
import { isWebSocketUpgrade } from '../proxy/websocket-checks.js';
import { clientErrorAnswer, refuseDuplicateHost } from './request-framing.js';

const MAX_HEADER_BYTES = 16 * 1024;

/**
 * The agent listener's HTTP server: requests go to `handler`, WebSocket upgrades to `upgrade`;
 * CONNECT and malformed requests are answered here.
 */
export function createAgentServer(
  timeouts: Config['clientTimeouts'],
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void,
): Server {
  const server = createServer(
    {
      maxHeaderSize: MAX_HEADER_BYTES,
      requireHostHeader: true,
      headersTimeout: timeouts.headersMs,
      requestTimeout: timeouts.requestMs,
      // Node checks both timeouts on this interval (default 30 s): keep a slow client's 408 near its limit.
      connectionsCheckingInterval: Math.min(1_000, Math.max(100, Math.floor(timeouts.headersMs / 4))),
      // Node >= 24.9: other upgrades (h2c...) stay plain requests; older Node sends them to 'upgrade' (refused there).
      shouldUpgradeCallback: isWebSocketUpgrade,
    },
    refuseDuplicateHost(handler),
  );
  server.on('upgrade', upgrade);
  server.on('connect', (_req, socket: Socket) => {
    // Authority-form CONNECT would make this an open proxy (RFC 9110 §9.3.6): refuse it.
    socket.end('HTTP/1.1 405 Method Not Allowed\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const { status, description } = clientErrorAnswer(err.code);
    const body = JSON.stringify({ error: 'invalid_request', error_description: description });
    socket.end(
      `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
    );
  });
  return server;
}
