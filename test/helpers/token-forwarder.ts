import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer } from '../../src/server/listen.js';

/** A running forwarder: send to `url`, it reaches the target with the token added. */
export interface TokenForwarder {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Stands in for an agent that holds a user token, for clients that cannot be given a header (the
 * conformance suite's CLI has no header option): every request is passed to `target` byte for byte,
 * `Host` and `Origin` included, with `Authorization: Bearer <token>` added. Responses stream back
 * as they come (SSE event by event). Test-only: it forwards whatever Host it is sent.
 */
export async function startTokenForwarder(target: string, token: string): Promise<TokenForwarder> {
  const { hostname, port } = new URL(target);
  const server = createServer((req, res) => {
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) if (value !== undefined) headers[name] = value;
    headers.authorization = `Bearer ${token}`;
    const upstream = request(
      { host: hostname, port: Number(port), method: req.method, path: req.url, headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        res.flushHeaders();
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    // The client went away (a cancelled SSE stream): so does the request to the target.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => closeServer(server),
  };
}
