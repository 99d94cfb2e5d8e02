import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream';
import httpProxy from 'http-proxy';
import { childOptions, serve } from './child.js';

/**
 * The engine's own cost: http-proxy with the same keep-alive agent settings as src/proxy/forwarder.ts
 * and no auth, no header work, no logging. `mode` (attribution runs only):
 *   plain          http-proxy passes the response on itself (the reference, configuration 3);
 *   self-pipeline  the response leg as src/proxy/forwarder.ts does it: selfHandleResponse, writeHead,
 *                  flushHeaders, stream.pipeline;
 *   self-pipe      selfHandleResponse, writeHead, proxyRes.pipe(res): no flushHeaders, no pipeline.
 */
type Mode = 'plain' | 'self-pipeline' | 'self-pipe';
const { upstream, mode = 'plain' } = childOptions<{ upstream: string; mode?: Mode }>();
const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' });
const proxy = httpProxy.createProxyServer({
  xfwd: false,
  ws: false,
  changeOrigin: true,
  followRedirects: false,
  selfHandleResponse: mode !== 'plain',
});

if (mode !== 'plain') {
  proxy.on('proxyRes', (proxyRes: http.IncomingMessage, _req: http.IncomingMessage, res: http.ServerResponse) => {
    delete proxyRes.headers.connection;
    delete proxyRes.headers['keep-alive'];
    res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, proxyRes.headers);
    if (mode === 'self-pipeline') {
      res.flushHeaders();
      pipeline(proxyRes, res, (err) => {
        if (err && !res.destroyed) res.destroy();
      });
    } else {
      proxyRes.on('error', () => res.destroy());
      proxyRes.pipe(res);
    }
  });
}

const server = http.createServer((req, res) => {
  proxy.web(req, res, { target: upstream, agent }, () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  serve({ url: `http://127.0.0.1:${port}` }, {}, async () => {
    server.closeAllConnections();
    server.close();
    agent.destroy();
  });
});
