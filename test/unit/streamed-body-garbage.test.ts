import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createForwarder } from '../../src/proxy/forwarder.js';
import { streamedBodyGarbage } from '../../src/proxy/streamed-body-garbage.js';

const listen = (server: Server) =>
  new Promise<string>((r) =>
    server.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );

describe('streamed request bodies and the collections that free their buffers', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  it('collects once per `everyBytes` sent, counted across calls', () => {
    let collections = 0;
    const sent = streamedBodyGarbage(() => collections++, 100);
    for (const n of [40, 40, 19]) sent(n);
    expect(collections).toBe(0);
    sent(1);
    expect(collections).toBe(1);
    sent(250);
    expect(collections).toBe(2);
  });

  it('the forwarder reports every chunk of a streamed body it writes upstream', async () => {
    let received = 0;
    const upstream = createServer((req, res) => {
      req.on('data', (c: Buffer) => {
        received += c.length;
      });
      req.on('end', () => res.end('ok'));
    });
    servers.push(upstream);
    const upstreamUrl = new URL(await listen(upstream));
    let reported = 0;
    const forwarder = createForwarder({ connections: 1, keepAliveTimeoutMs: 1_000 }, (n) => {
      reported += n;
    });
    const front = createServer((req: IncomingMessage, res) => {
      forwarder.dispatch(
        res,
        { upstream: upstreamUrl, path: '/up', method: 'POST', headers: [], timeoutMs: 5_000, body: req },
        { forwarded: () => {}, failed: (err) => res.destroy(err as Error) },
      );
    });
    servers.push(front);
    const frontUrl = await listen(front);
    const size = 3 * 1024 * 1024 + 17;
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${frontUrl}/up`, { method: 'POST' }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      const chunk = Buffer.alloc(64 * 1024, 1);
      let left = size;
      const write = () => {
        while (left > 0) {
          const part = chunk.subarray(0, Math.min(left, chunk.length));
          left -= part.length;
          if (!req.write(part)) {
            req.once('drain', write);
            return;
          }
        }
        req.end();
      };
      write();
    });
    await forwarder.close();
    expect(status).toBe(200);
    expect(received).toBe(size);
    // Chunked framing is written separately: the hook hears the body's own bytes.
    expect(reported).toBe(size);
  });
});
