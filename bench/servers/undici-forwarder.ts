import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Dispatcher, Pool } from 'undici';
import { childOptions, serve } from './child.js';

/**
 * For comparison only (bench/, not src/): the same job as bare-http-proxy on undici, no auth, no
 * logging. `mode`:
 *   stream    Pool.stream (the reference of the first benchmark runs);
 *   dispatch  Pool.dispatch with a handler that writes to the response as data arrives, pausing on
 *             backpressure: the low-level API the proxy's forwarder uses, so this is its floor.
 */
type Mode = 'stream' | 'dispatch';
const { upstream, mode = 'stream' } = childOptions<{ upstream: string; mode?: Mode }>();
const pool = new Pool(upstream, { connections: 256, pipelining: 1, keepAliveTimeout: 60_000 });
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
]);

function forwardable(
  headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>,
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers))
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  return out;
}

function viaStream(req: http.IncomingMessage, res: http.ServerResponse): void {
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  pool.stream(
    {
      path: req.url ?? '/',
      method: (req.method ?? 'GET') as 'GET',
      headers: forwardable(req.headers) as Record<string, string>,
      body: hasBody ? req : null,
    },
    ({ statusCode, headers }) => {
      res.writeHead(statusCode, forwardable(headers));
      return res;
    },
    (err) => {
      if (err && !res.headersSent) {
        res.writeHead(502);
        res.end();
      } else if (err) res.destroy(err);
    },
  );
}

function viaDispatch(req: http.IncomingMessage, res: http.ServerResponse): void {
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  const handler: Dispatcher.DispatchHandler = {
    // undici 8 refuses a handler without it (InvalidArgumentError: invalid onRequestStart method).
    onRequestStart() {},
    onResponseStart(controller, statusCode, headers) {
      res.writeHead(statusCode, forwardable(headers));
      res.on('drain', () => controller.resume());
    },
    onResponseData(controller, chunk) {
      if (!res.write(chunk)) controller.pause();
    },
    onResponseEnd() {
      res.end();
    },
    onResponseError(_controller, err) {
      if (!res.headersSent) {
        res.writeHead(502);
        res.end();
      } else res.destroy(err);
    },
  };
  pool.dispatch(
    {
      path: req.url ?? '/',
      method: (req.method ?? 'GET') as 'GET',
      headers: forwardable(req.headers) as Record<string, string>,
      body: hasBody ? req : null,
    },
    handler,
  );
}

const server = http.createServer(mode === 'dispatch' ? viaDispatch : viaStream);
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  serve({ url: `http://127.0.0.1:${port}` }, {}, async () => {
    server.closeAllConnections();
    server.close();
    await pool.close();
  });
});
