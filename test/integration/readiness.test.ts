import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { closeServer } from '../../src/server/listen.js';
import { useClosers } from '../helpers/closers.js';
import { startAs } from '../helpers/start-as.js';
import { startProxy, type TestProxy } from '../helpers/start-proxy.js';
import { startUpstream } from '../helpers/start-upstream.js';
import { unusedAddress } from '../helpers/unused-address.js';

const closers = useClosers();

async function readyz(proxy: TestProxy): Promise<{ status: number; body: { status: string; reasons?: string[] } }> {
  const res = await request(`${proxy.adminUrl}/readyz`);
  expect(res.headers['content-type']).toBe('application/json');
  return { status: res.statusCode, body: (await res.body.json()) as { status: string; reasons?: string[] } };
}

/** A port with nothing listening on it (bound, then released). */
/** A proxy against a real AS, or (with `tokenEndpoint`) against whatever answers there. */
async function proxyFor(tokenEndpoint: string | undefined): Promise<TestProxy> {
  const upstream = await startUpstream();
  closers.push(() => upstream.close());
  const routes = [{ name: 'docs', match: { pathPrefix: '/docs' }, upstream: upstream.url }];
  let proxy: TestProxy;
  if (tokenEndpoint === undefined) {
    const as = await startAs();
    closers.push(() => as.close());
    proxy = await startProxy({ as, config: { routes } });
  } else {
    const secretFile = join(mkdtempSync(join(tmpdir(), 'dp-ready-')), 'secret');
    writeFileSync(secretFile, 'secret');
    proxy = await startProxy({
      config: {
        authorizationServer: { tokenEndpoint, clientId: 'c', clientSecretFile: secretFile, timeoutMs: 500 },
        routes,
      },
    });
  }
  closers.push(() => proxy.close());
  return proxy;
}

describe('admin listener: /healthz and /readyz', () => {
  it('is ready once the authorization server was reached, and 503 with a reason while draining', async () => {
    const proxy = await proxyFor(undefined);
    expect((await request(`${proxy.adminUrl}/healthz`)).statusCode).toBe(200);
    expect(await readyz(proxy)).toEqual({ status: 200, body: { status: 'ready' } });

    proxy.proxy.readiness.drain();
    expect(await readyz(proxy)).toEqual({ status: 503, body: { status: 'not_ready', reasons: ['draining'] } });
    expect((await request(`${proxy.adminUrl}/healthz`)).statusCode).toBe(200);
    expect(proxy.logs.lines()).toContainEqual(
      expect.objectContaining({ msg: 'readiness changed', ready: false, reasons: ['draining'] }),
    );
  });

  it('answers 503 while the authorization server is unreachable, and turns ready when it answers', async () => {
    const { url, host, port } = await unusedAddress();
    const proxy = await proxyFor(`${url}/token`);
    const down = await readyz(proxy);
    expect(down.status).toBe(503);
    expect(down.body.reasons).toEqual(['authorization_server: unreachable (ECONNREFUSED)']);
    expect((await request(`${proxy.adminUrl}/healthz`)).statusCode).toBe(200);

    // The AS comes up on that port; the next probe (run now instead of waiting its interval) sees it.
    const as = createHttpServer((_req, res) => {
      res.writeHead(405);
      res.end();
    });
    await new Promise<void>((resolve) => as.listen(port, host, resolve));
    closers.push(() => closeServer(as));
    expect((await proxy.proxy.readiness.probe()).ready).toBe(true);
    expect((await readyz(proxy)).status).toBe(200);
  });

  it('answers 503 when the authorization server fails with 5xx', async () => {
    const broken = await startUpstream((_req, res) => {
      res.writeHead(502);
      res.end();
    });
    closers.push(() => broken.close());
    const proxy = await proxyFor(`${broken.url}/token`);
    expect(await readyz(proxy)).toEqual({
      status: 503,
      body: { status: 'not_ready', reasons: ['authorization_server: answered HTTP 502'] },
    });
  });

  it('lets other modules register named checks', async () => {
    const proxy = await proxyFor(undefined);
    let jwks: string | undefined = 'not loaded yet';
    const remove = proxy.proxy.readiness.addCheck('jwks', () => jwks);
    expect(await readyz(proxy)).toEqual({
      status: 503,
      body: { status: 'not_ready', reasons: ['jwks: not loaded yet'] },
    });
    jwks = undefined;
    expect((await readyz(proxy)).status).toBe(200);

    proxy.proxy.readiness.addCheck('discovery', () => {
      throw new Error('boom');
    });
    expect((await readyz(proxy)).body.reasons).toEqual(['discovery: check failed: boom']);
    proxy.proxy.readiness.addCheck('discovery', () => undefined); // same name replaces
    expect((await readyz(proxy)).status).toBe(200);
    jwks = 'stale';
    remove();
    expect((await readyz(proxy)).status).toBe(200);
  });

  it('serves 404 for unknown admin paths and 405 for other methods', async () => {
    const proxy = await proxyFor(undefined);
    expect((await request(`${proxy.adminUrl}/nope`)).statusCode).toBe(404);
    expect((await request(`${proxy.adminUrl}/readyz`, { method: 'POST' })).statusCode).toBe(405);
  });
});
