import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from './child.js';

// The minimal upstream: a small fixed JSON answer, keep-alive, body drained.
const BODY = Buffer.from('{"ok":true,"service":"bench-upstream"}');

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
    res.end(BODY);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  serve({ url: `http://127.0.0.1:${port}`, port }, {}, async () => {
    server.closeAllConnections();
    server.close();
  });
});
