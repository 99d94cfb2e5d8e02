import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { useClosers } from '../helpers/closers.js';
import { get, startRig, tally, userTokens } from './harness.js';

const closers = useClosers();

describe('load shapes', () => {
  it('slowloris: 200 connections dribbling headers do not starve other clients', async () => {
    const rig = await startRig(closers);
    const [token] = await userTokens(rig.as, 1);
    expect((await get(rig, '/documents/warm', token)).status).toBe(200);
    const { hostname, port } = new URL(rig.proxy.url);
    const sockets: Socket[] = [];
    closers.push(() => {
      for (const s of sockets) s.destroy();
    });
    await Promise.all(
      Array.from(
        { length: 200 },
        () =>
          new Promise<void>((resolve) => {
            const s = connect(Number(port), hostname, () => {
              s.write('GET /documents/slow HTTP/1.1\r\nHost: localhost\r\n');
              resolve();
            });
            s.on('error', () => {});
            sockets.push(s);
          }),
      ),
    );
    const dribble = setInterval(() => {
      for (const s of sockets) if (s.writable) s.write(`X-${Math.random().toString(36).slice(2, 6)}: a\r\n`);
    }, 100);
    closers.push(() => clearInterval(dribble));
    // Meanwhile ordinary requests are served as usual.
    const started = performance.now();
    const answers = await Promise.all(Array.from({ length: 50 }, () => get(rig, '/documents/ok', token)));
    const elapsed = performance.now() - started;
    expect(tally(answers)).toEqual({ 200: 50 });
    expect(elapsed).toBeLessThan(5_000);
  }, 30_000);

  it('a burst of 1,000 concurrent connections is served in full', async () => {
    const rig = await startRig(closers);
    const [token] = await userTokens(rig.as, 1);
    expect((await get(rig, '/documents/warm', token)).status).toBe(200);
    const answers = await Promise.all(Array.from({ length: 1000 }, (_, i) => get(rig, `/documents/burst-${i}`, token)));
    expect(tally(answers)).toEqual({ 200: 1000 });
    expect(rig.upstream.requests.length).toBe(1001);
  }, 60_000);

  it('a 256 MiB streamed upload goes through with bounded memory', async () => {
    let received = 0;
    const rig = await startRig(closers, {
      upstream: (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      },
    });
    // The recording upstream buffers bodies: use a counting one for the upload route instead.
    const { createServer } = await import('node:http');
    const sink = createServer((req, res) => {
      req.on('data', (c: Buffer) => {
        received += c.length;
      });
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ received }));
      });
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise<void>((r) => sink.close(() => r())));
    const sinkPort = (sink.address() as { port: number }).port;
    await rig.proxy.close();
    const { startProxy } = await import('../helpers/start-proxy.js');
    const proxy = await startProxy({
      as: rig.as,
      config: {
        routes: [
          {
            name: 'upload',
            match: { pathPrefix: '/upload' },
            upstream: `http://127.0.0.1:${sinkPort}`,
            scopes: ['documents:read'],
          },
        ],
      },
    });
    closers.push(() => proxy.close());
    const [token] = await userTokens(rig.as, 1);
    const TOTAL = 256 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    async function* body() {
      for (let sent = 0; sent < TOTAL; sent += chunk.length) yield chunk;
    }
    globalThis.gc?.();
    const base = process.memoryUsage();
    let peak = 0;
    const probe = setInterval(() => {
      const m = process.memoryUsage();
      peak = Math.max(peak, m.heapUsed + m.arrayBuffers - (base.heapUsed + base.arrayBuffers));
    }, 20);
    const res = await request(`${proxy.url}/upload/big`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      body: Readable.from(body()),
      dispatcher: rig.client,
    });
    const text = await res.body.text();
    clearInterval(probe);
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(text)).toEqual({ received: TOTAL });
    // Streamed, not buffered: the JS heap and buffers (this whole test process, garbage not yet
    // collected included) stay well under the body's size.
    expect(peak).toBeLessThan(TOTAL / 2);
  }, 120_000);
});
