import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import { closeServer } from '../../src/server/listen.js';

export interface UpstreamStream {
  readonly method: string;
  readonly url: string;
  /** `sub` of the delegated token the request carried. */
  readonly sub: string | undefined;
  readonly body: string;
  readonly res: ServerResponse;
  /** The request's connection closed (the proxy let go of the stream). */
  closed: boolean;
  /** Writes one SSE event. */
  send(data: string): void;
}

export interface TestSseUpstream {
  readonly url: string;
  readonly streams: UpstreamStream[];
  close(): Promise<void>;
}

/**
 * A real upstream on port 0 that answers every request with a `text/event-stream` 200 that stays
 * open (one comment line first, so the head goes out), as an MCP server's GET stream or a
 * `subscriptions/listen` POST does. `json` answers a request with a JSON body instead.
 */
export async function startSseUpstream(
  options: { json?: (req: IncomingMessage, body: string) => unknown } = {},
): Promise<TestSseUpstream> {
  const streams: UpstreamStream[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const json = options.json?.(req, body);
      if (json !== undefined) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json));
        return;
      }
      const auth = req.headers.authorization ?? '';
      const stream: UpstreamStream = {
        method: req.method ?? '',
        url: req.url ?? '',
        sub: auth.startsWith('Bearer ') ? (decodeJwt(auth.slice(7)).sub as string | undefined) : undefined,
        body,
        res,
        closed: false,
        send: (data) => void res.write(`data: ${data}\n\n`),
      };
      streams.push(stream);
      res.on('close', () => {
        stream.closed = true;
      });
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write(': open\n\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    streams,
    close: () => closeServer(server),
  };
}
