import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from './child.js';

// The minimal upstream: a small fixed JSON answer, keep-alive, body drained. Paths that end in
// `/tools-list` answer an MCP `tools/list` result (JSON; `/sse/tools-list` as one SSE event) so the
// MCP response filters can be measured against the same answer passed through unfiltered.
const BODY = Buffer.from('{"ok":true,"service":"bench-upstream"}');
const TOOLS = Array.from({ length: 12 }, (_, i) => ({
  name: i === 0 ? 'delete_file' : `tool_${i}`,
  description: `Bench tool number ${i}, with a description of ordinary length for a tool catalogue entry.`,
  inputSchema: {
    type: 'object',
    properties: { path: { type: 'string' }, limit: { type: 'number' } },
    required: ['path'],
  },
}));
const LIST = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { tools: TOOLS } });
const LIST_JSON = Buffer.from(LIST);
const LIST_SSE = Buffer.from(`event: message\ndata: ${LIST}\n\n`);

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const url = req.url ?? '/';
    if (url.endsWith('/tools-list')) {
      const sse = url.includes('/sse/');
      const body = sse ? LIST_SSE : LIST_JSON;
      res.writeHead(200, {
        'content-type': sse ? 'text/event-stream' : 'application/json',
        'content-length': body.length,
      });
      res.end(body);
      return;
    }
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
