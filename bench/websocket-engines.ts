/**
 * WebSocket engines side by side (docs/websocket.md): http-proxy `ws()`, http-proxy-3
 * `ws()` and undici's low-level upgrade dispatch (what src/proxy/websocket-*.ts use), each in its
 * own process so deprecation warnings are counted from a clean start. Each engine relays to the same
 * `ws` upstream; measured: runtime warnings, what the agent gets for a non-101 answer (401 with a
 * challenge), uncaught errors, and sockets/heap after 500 connect/close cycles with resets on both sides.
 *
 *   node --import tsx bench/websocket-engines.ts            # all three, one JSON line each
 *   node --import tsx bench/websocket-engines.ts undici     # one engine
 */
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingMessage, ServerResponse } from 'node:http';
import { type AddressInfo, type Socket, connect as tcpConnect } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import httpProxy from 'http-proxy';
import { createProxyServer as createProxy3 } from 'http-proxy-3';
import { Agent } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import { upstreamHandshake } from '../src/proxy/websocket-handshake.js';
import { relay } from '../src/proxy/websocket-relay.js';
import { socketsOn } from '../test/helpers/proc-sockets.js';

type Engine = 'http-proxy' | 'http-proxy-3' | 'undici';
const ENGINES: Engine[] = ['http-proxy', 'http-proxy-3', 'undici'];
const CYCLES = Number(process.env.BENCH_WS_CYCLES ?? 500);
/** Close modes to cycle through (0-4, see cycle()); default all five. */
const MODES = (process.env.BENCH_WS_MODES ?? '0,1,2,3,4').split(',').map(Number);

const engine = process.argv[2] as Engine | undefined;
if (engine === undefined) {
  for (const e of ENGINES) {
    const child = spawnSync(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, e], {
      encoding: 'utf8',
    });
    const line = child.stdout.trim().split('\n').pop() ?? '';
    const printed = (child.stderr.match(/\[DEP\d+\]/g) ?? []).join(' ');
    console.log(
      line === ''
        ? JSON.stringify({ engine: e, failed: child.stderr.slice(0, 500) })
        : line.replace(/}$/, `,"stderrWarnings":${JSON.stringify(printed)}}`),
    );
  }
} else {
  await measure(engine);
}

async function measure(name: Engine): Promise<void> {
  const warnings: string[] = [];
  process.on('warning', (w: Error & { code?: string }) => warnings.push(w.code ?? w.name));
  let uncaught = 0;
  process.on('uncaughtException', () => uncaught++);
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;

  const upstream = await startUpstream();
  const front = createServer((_req, res) => res.end());
  const handle = upgradeWith(name, upstream.url);
  front.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    req.headers.authorization = 'Bearer delegated';
    handle(req, socket, head);
  });
  front.listen(0, '127.0.0.1');
  await once(front, 'listening');
  const port = (front.address() as AddressInfo).port;
  const ports = new Set([port, Number(new URL(upstream.url).port)]);

  // Non-101: what the agent gets when the upstream answers 401 with a challenge.
  const refusal = await raw(port, '/refuse');
  const refusalStatus = Number(/^HTTP\/1\.1 (\d+)/.exec(refusal)?.[1] ?? 0);
  const challengeRelayed = /www-authenticate: Bearer error="invalid_token"/i.test(refusal);

  for (let i = 0; i < 50; i++) await cycle(port, i);
  await settle(ports);
  const before = sample(gc, ports);
  const started = performance.now();
  let failedCycles = 0;
  for (let i = 0; i < CYCLES; i++) await cycle(port, i).catch(() => failedCycles++);
  const settled = await settle(ports);
  const after = sample(gc, ports);
  console.log(
    JSON.stringify({
      engine: name,
      warnings,
      uncaught,
      refusalStatus,
      challengeRelayed,
      cycles: CYCLES,
      modes: MODES.join(','),
      failedCycles,
      cyclesMs: Math.round(performance.now() - started),
      pathSockets: `${before.sockets} -> ${after.sockets}`,
      settledWithinMs: settled,
      heapKiB: `${Math.round(before.heap / 1024)} -> ${Math.round(after.heap / 1024)}`,
    }),
  );
  process.exit(0);
}

function upgradeWith(name: Engine, target: string): (req: IncomingMessage, socket: Socket, head: Buffer) => void {
  if (name === 'http-proxy') {
    const proxy = httpProxy.createProxyServer({ target, ws: true });
    proxy.on('error', (_err, _req, socket) => (socket as Socket).destroy());
    return (req, socket, head) => proxy.ws(req, socket, head);
  }
  if (name === 'http-proxy-3') {
    const proxy = createProxy3({ target, ws: true });
    proxy.on('error', (_err: Error, _req: unknown, socket: unknown) => (socket as Socket).destroy());
    return (req, socket, head) => proxy.ws(req, socket, head);
  }
  const dispatcher = new Agent();
  return (req, socket, head) => {
    const abort = new AbortController();
    socket.once('close', () => abort.abort());
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (typeof v === 'string' && !['host', 'connection', 'upgrade'].includes(k)) headers[k] = v;
    upstreamHandshake(dispatcher, {
      upstream: new URL(target),
      path: req.url ?? '/',
      headers,
      timeoutMs: 5_000,
      signal: abort.signal,
    })
      .then((result) => {
        if (result.kind === 'upgraded') {
          let head101 = 'HTTP/1.1 101 Switching Protocols\r\n';
          for (const [k, v] of Object.entries(result.headers)) head101 += `${k}: ${String(v)}\r\n`;
          socket.write(`${head101}\r\n`);
          relay(socket, result.socket, { clientHead: head, lingerMs: 2_000, onEnd: () => {} });
          return;
        }
        const res = new ServerResponse(req);
        res.assignSocket(socket);
        res.shouldKeepAlive = false;
        res.once('finish', () => socket.destroySoon());
        const { 'content-length': _cl, connection: _c, ...rest } = result.headers;
        res.writeHead(result.status, rest as Record<string, string>);
        res.end(result.body);
      })
      .catch(() => socket.destroy());
  };
}

async function startUpstream(): Promise<{ url: string }> {
  const wss = new WebSocketServer({ noServer: true });
  const server = createServer();
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (req.url === '/refuse') {
      socket.end(
        'HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer error="invalid_token"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n',
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => ws.terminate());
      ws.on('message', (data) => {
        const text = data.toString();
        if (text === 'reset') (ws as unknown as { _socket: Socket })._socket.resetAndDestroy();
        else if (text === 'close') ws.close(1000);
        else ws.send(data);
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** Five ways for a connection to end, in turn: close frame, agent RST, upstream RST, upstream close, RST during the handshake. */
async function cycle(port: number, i: number): Promise<void> {
  const mode = MODES[i % MODES.length] as number;
  if (mode === 4) {
    const s = tcpConnect(port, '127.0.0.1');
    s.on('error', () => {});
    await once(s, 'connect');
    s.write(
      `GET /x HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    );
    s.resetAndDestroy();
    await once(s, 'close');
    return;
  }
  const ws = new WebSocket(`ws://127.0.0.1:${port}/x`);
  ws.on('error', () => {});
  await once(ws, 'open');
  const closed = once(ws, 'close');
  ws.send(mode === 2 ? 'reset' : mode === 3 ? 'close' : 'ping');
  if (mode < 2) {
    await once(ws, 'message');
    if (mode === 0) ws.close(1000);
    else (ws as unknown as { _socket: Socket })._socket.resetAndDestroy();
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    closed,
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('not closed')), 5_000))),
  ]).finally(() => clearTimeout(timer));
}

function raw(port: number, path: string): Promise<string> {
  return new Promise((resolve) => {
    const s = tcpConnect(port, '127.0.0.1', () =>
      s.write(
        `GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
      ),
    );
    let data = '';
    s.on('data', (d) => (data += d.toString('latin1')));
    s.on('error', () => resolve(data));
    s.on('close', () => resolve(data));
    setTimeout(() => s.destroy(), 3_000).unref();
  });
}

/** Waits (up to 5 s) until only the two listening sockets remain on the path; returns the wait. */
async function settle(ports: ReadonlySet<number>): Promise<number> {
  const start = performance.now();
  while (socketsOn(ports) > 2 && performance.now() - start < 5_000) await new Promise((r) => setTimeout(r, 20));
  return Math.round(performance.now() - start);
}

function sample(gc: () => void, ports: ReadonlySet<number>): { sockets: number; heap: number } {
  gc();
  gc();
  return { sockets: socketsOn(ports), heap: process.memoryUsage().heapUsed };
}
