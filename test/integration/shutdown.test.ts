import { connect } from 'node:net';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { drainAndClose } from '../../src/server/shutdown.js';
import { type CliProcess, startCli, started, writeConfig } from '../helpers/cli-process.js';
import { useClosers } from '../helpers/closers.js';
import { CLIENT_ID, startAs } from '../helpers/start-as.js';
import { startProxy } from '../helpers/start-proxy.js';
import { startUpstream } from '../helpers/start-upstream.js';

const closers = useClosers();

/** An upstream whose /slow and /sse responses are held open until the test releases them. */
async function holdingUpstream() {
  const held: Array<() => void> = [];
  const upstream = await startUpstream((req, res) => {
    if (req.url?.startsWith('/sse')) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      res.write('data: first\n\n');
      held.push(() => res.end('data: last\n\n'));
      return;
    }
    if (req.url?.startsWith('/slow')) {
      held.push(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`done ${req.url}`);
      });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('fast');
  });
  closers.push(() => upstream.close());
  return {
    upstream,
    release: () => {
      for (const fn of held.splice(0)) fn();
    },
  };
}

async function readyStatus(adminUrl: string): Promise<number> {
  const res = await request(`${adminUrl}/readyz`);
  await res.body.dump();
  return res.statusCode;
}

function refused(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

describe('graceful shutdown', () => {
  it('on SIGTERM: readiness 503 at once, accepts during the drain delay, finishes in-flight requests and SSE, exits 0', async () => {
    const as = await startAs();
    closers.push(() => as.close());
    const { upstream, release } = await holdingUpstream();
    const file = writeConfig({
      listen: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      authorizationServer: { tokenEndpoint: as.tokenEndpoint, clientId: CLIENT_ID, clientSecretFile: as.secretFile },
      shutdown: { drainDelaySeconds: 1.5, gracePeriodSeconds: 20 },
      routes: [{ name: 'app', match: { pathPrefix: '/' }, upstream: upstream.url, scopes: ['documents:read'] }],
    });
    const cli: CliProcess = startCli(['--config', file]);
    closers.push(() => cli.stop());
    const { url, adminUrl } = await started(cli);
    await cli.waitForLine((l) => l.msg === 'readiness changed' && l.ready === true, 'readiness');
    expect(await readyStatus(adminUrl)).toBe(200);

    const user = await as.userToken('alice', ['documents:read']);
    const headers = { authorization: `Bearer ${user}` };
    const slow = [1, 2, 3].map((n) => request(`${url}/slow/${n}`, { headers }));
    const sse = await request(`${url}/sse`, { headers: { ...headers, accept: 'text/event-stream' } });
    expect(sse.statusCode).toBe(200);
    const sseText = sse.body.text();
    while (upstream.requests.length < 4) await new Promise((resolve) => setTimeout(resolve, 5));

    expect(cli.child.kill('SIGTERM')).toBe(true);
    await cli.waitForLine((l) => l.msg === 'shutting down: draining (readiness 503)', 'draining');
    expect(await readyStatus(adminUrl)).toBe(503);
    // Still accepting during the drain delay (Kubernetes may still route here for a moment).
    const during = await request(`${url}/fast`, { headers });
    expect(during.statusCode).toBe(200);
    expect(await during.body.text()).toBe('fast');

    const stopped = await cli.waitForLine(
      (l) => l.msg === 'shutting down: no longer accepting connections',
      'stop accepting',
    );
    expect(stopped.inFlight).toBe(4);
    // The log line is written just before the listening socket is closed: allow that moment.
    const refusedBy = Date.now() + 3_000;
    while (!(await refused(url)) && Date.now() < refusedBy) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await refused(url)).toBe(true);
    expect(await readyStatus(adminUrl)).toBe(503); // the admin listener stays up until the end

    release();
    const responses = await Promise.all(slow);
    expect(responses.map((r) => r.statusCode)).toEqual([200, 200, 200]);
    expect(await Promise.all(responses.map((r) => r.body.text()))).toEqual([
      'done /slow/1',
      'done /slow/2',
      'done /slow/3',
    ]);
    expect(await sseText).toBe('data: first\n\ndata: last\n\n');

    expect(await cli.exited).toEqual({ code: 0, signal: null });
    const messages = cli.lines.map((l) => l.msg);
    expect(messages.indexOf('shutting down: draining (readiness 503)')).toBeLessThan(
      messages.indexOf('shutting down: no longer accepting connections'),
    );
    expect(messages).toContain('shut down');
    expect(messages).not.toContain('grace period over: cut requests still in flight');
    const access = cli.lines.filter((l) => l.access === true);
    expect(access.map((l) => l.status)).toEqual([200, 200, 200, 200, 200]);
    expect(access.some((l) => l.aborted)).toBe(false);
  }, 30_000);

  it('cuts what is still streaming when the grace period ends', async () => {
    const as = await startAs();
    closers.push(() => as.close());
    const { upstream } = await holdingUpstream();
    const proxy = await startProxy({
      as,
      config: {
        routes: [{ name: 'app', match: { pathPrefix: '/' }, upstream: upstream.url, scopes: ['documents:read'] }],
      },
    });
    closers.push(() => proxy.close());
    const user = await as.userToken('alice', ['documents:read']);
    const sse = await request(`${proxy.url}/sse`, { headers: { authorization: `Bearer ${user}` } });
    const body = sse.body.text().then(
      (text) => ({ text, error: undefined }),
      (error: Error) => ({ text: undefined, error }),
    );

    await drainAndClose(
      {
        readiness: proxy.proxy.readiness,
        logger: proxy.proxy.logger,
        inFlight: proxy.proxy.inFlight,
        close: (ms) => proxy.proxy.close(ms),
      },
      { drainDelaySeconds: 0, gracePeriodSeconds: 0.2 },
      'SIGTERM',
    );
    expect((await body).error).toBeDefined();
    expect(proxy.logs.lines()).toContainEqual(
      expect.objectContaining({ msg: 'grace period over: cut requests still in flight', cut: 1 }),
    );
    expect(proxy.proxy.readiness.state()).toEqual({ ready: false, reasons: ['draining'] });
  });
});
