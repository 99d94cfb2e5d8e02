import http from 'node:http';
import type { AddressInfo } from 'node:net';
import httpProxy from 'http-proxy';
import { childOptions, serve } from './child.js';

// The engine's own cost: http-proxy with the same keep-alive agent settings as src/proxy/forwarder.ts
// and no auth, no headers work, no logging.
const { upstream } = childOptions<{ upstream: string }>();
const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' });
const proxy = httpProxy.createProxyServer({ xfwd: false, ws: false, changeOrigin: true, followRedirects: false });

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
