import { createServer, type IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import { closeServer } from '../../src/server/listen.js';

export interface WsHandshake {
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly rawHeaders: string[];
}

export interface TestWsUpstream {
  readonly url: string;
  /** Every opening handshake that reached the upstream, accepted or not. */
  readonly handshakes: WsHandshake[];
  /** Server-side sockets of the open connections. */
  readonly clients: Set<WebSocket>;
  close(): Promise<void>;
}

export interface WsUpstreamOptions {
  /** Answers the handshake with a plain HTTP response instead of upgrading (attempt numbers from 1). */
  refuse?: (handshake: WsHandshake, attempt: number, res: ServerResponse) => boolean;
  /** Per accepted connection; default: echo every message back. */
  onConnection?: (ws: WebSocket, handshake: WsHandshake) => void;
}

/**
 * A real WebSocket upstream (the `ws` package) on port 0 that records every handshake it sees; it
 * echoes each message back and, on the message "whoami", answers with the handshake it received.
 */
export async function startWsUpstream(options: WsUpstreamOptions = {}): Promise<TestWsUpstream> {
  const handshakes: WsHandshake[] = [];
  const wss = new WebSocketServer({ noServer: true });
  const server = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' });
    res.end('upgrade required');
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const handshake = { url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders };
    handshakes.push(handshake);
    socket.on('error', () => socket.destroy());
    if (options.refuse) {
      const res = new ServerResponse(req);
      res.assignSocket(socket);
      res.shouldKeepAlive = false;
      res.once('finish', () => socket.destroySoon());
      if (options.refuse(handshake, handshakes.length, res)) return;
      res.detachSocket(socket);
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => ws.terminate());
      if (options.onConnection) options.onConnection(ws, handshake);
      else
        ws.on('message', (data, isBinary) => {
          if (!isBinary && data.toString() === 'whoami') ws.send(JSON.stringify(handshake));
          else ws.send(data, { binary: isBinary });
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    handshakes,
    clients: wss.clients,
    async close() {
      if (!server.listening) return;
      for (const ws of wss.clients) ws.terminate();
      for (const s of sockets) s.destroy();
      wss.close();
      await closeServer(server);
    },
  };
}
