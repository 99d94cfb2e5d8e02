import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { closeServer } from '../../src/server/listen.js';

/** A real misbehaving upstream on port 0 that counts what reached it and which connections are open. */
export interface CountingUpstream {
  readonly url: string;
  readonly server: Server;
  /** Requests that arrived, in order ("METHOD /path"). */
  readonly arrivals: string[];
  /** Connections accepted so far. */
  connections(): number;
  /** Connections open now. */
  open(): number;
  close(): Promise<void>;
}

export async function countingUpstream(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<CountingUpstream> {
  const arrivals: string[] = [];
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((req, res) => {
    arrivals.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  server.on('connection', (s: Socket) => {
    accepted++;
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    arrivals,
    connections: () => accepted,
    open: () => sockets.size,
    close: () => closeServer(server),
  };
}
