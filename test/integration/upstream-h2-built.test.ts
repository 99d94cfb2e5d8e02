import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ProxyProcess, startProxyProcess } from '../helpers/proxy-process.js';
import { opensslAvailable, selfSignedCert } from '../helpers/self-signed-cert.js';
import { shippedCliBuilt } from '../helpers/shipped-cli.js';
import { CLIENT_ID, startAs, type TestAuthorizationServer } from '../helpers/start-as.js';

// The bundle loads undici's HTTP/2 client on its first HTTP/2 connection, not at start
// (scripts/bundle.mjs): an upstream that negotiates h2 over TLS still gets the request, from the build.
const OPENSSL = opensslAvailable();

describe.skipIf(!shippedCliBuilt() || !OPENSSL)('an HTTP/2 upstream, from the build', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dp-h2-'));
  let as: TestAuthorizationServer;
  let upstream: Http2SecureServer;
  let proxy: ProxyProcess;
  const seen: { version: string; authorization: string | undefined; path: string | undefined }[] = [];

  beforeAll(async () => {
    const { key, cert } = selfSignedCert(dir);
    upstream = createSecureServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
      seen.push({ version: req.httpVersion, authorization: req.headers.authorization, path: req.url });
      res.end('from h2');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    as = await startAs();
    const upstreamUrl = `https://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    proxy = await startProxyProcess(
      dir,
      'h2',
      {
        authorizationServer: { tokenEndpoint: as.tokenEndpoint, clientId: CLIENT_ID, clientSecretFile: as.secretFile },
        routes: [{ name: 'docs', match: { pathPrefix: '/docs' }, upstream: upstreamUrl, scopes: ['documents:read'] }],
      },
      { NODE_EXTRA_CA_CERTS: cert },
      'built',
    );
  }, 60_000);

  afterAll(async () => {
    await proxy?.close();
    await as?.close();
    await new Promise((r) => upstream?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('forwards over HTTP/2 with the delegated token', async () => {
    const user = await as.userToken('alice', ['documents:read']);
    const res = await request(`${proxy.url}/docs/a`, { headers: { authorization: `Bearer ${user}` } });
    expect(await res.body.text()).toBe('from h2');
    expect(res.statusCode).toBe(200);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ version: '2.0', path: '/docs/a' });
    expect(seen[0]!.authorization).toMatch(/^Bearer /);
    expect(seen[0]!.authorization).not.toBe(`Bearer ${user}`);
  }, 30_000);
});
