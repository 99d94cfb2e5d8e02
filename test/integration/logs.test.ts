import { writeFileSync } from 'node:fs';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadConfigFile } from '../../src/config/load.js';
import { createConfigReloader } from '../../src/server/reload.js';
import { writeConfig } from '../helpers/cli-process.js';
import { useClosers } from '../helpers/closers.js';
import { CLIENT_ID, CLIENT_SECRET, startAs } from '../helpers/start-as.js';
import { startProxy } from '../helpers/start-proxy.js';
import { startUpstream } from '../helpers/start-upstream.js';
import { unusedAddress } from '../helpers/unused-address.js';

const closers = useClosers();

describe('logs', () => {
  it('write access lines and audit events, and never a user token, delegated token or secret', async () => {
    const as = await startAs();
    closers.push(() => as.close());
    const upstream = await startUpstream();
    closers.push(() => upstream.close());
    const down = (await unusedAddress()).url;
    const raw = (scopes: string[]) => ({
      listen: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      authorizationServer: { tokenEndpoint: as.tokenEndpoint, clientId: CLIENT_ID, clientSecretFile: as.secretFile },
      // The user token also rides in a session cookie below: stripped, or the request is refused.
      stripCookies: ['session'],
      routes: [
        {
          name: 'docs',
          match: { pathPrefix: '/docs' },
          upstream: upstream.url,
          stripPrefix: true,
          scopes,
          audience: 'https://docs.example',
        },
        { name: 'admin', match: { pathPrefix: '/admin' }, upstream: upstream.url, scopes: ['admin:all'] },
        { name: 'down', match: { pathPrefix: '/down' }, upstream: down, scopes: ['documents:read'] },
      ],
    });
    const proxy = await startProxy({ config: raw(['documents:read']) });
    const file = writeConfig(raw(['documents:read']));
    const reloader = createConfigReloader({
      file,
      env: {},
      logger: proxy.proxy.logger,
      running: loadConfigFile(file, {}),
      apply: (next) => proxy.proxy.applyConfig(next),
      watch: false,
    });
    closers.push(async () => {
      reloader.close();
      await proxy.close();
    });

    const alice = await as.userToken('alice', ['documents:read', 'documents:write']);
    const bob = await as.userToken('bob', ['documents:read']);
    const forged = `${alice.slice(0, -10)}AAAAAAAAAA`; // bad signature: the AS answers invalid_grant
    const call = async (path: string, token: string, headers: Record<string, string> = {}) => {
      const res = await request(`${proxy.url}${path}`, {
        headers: { authorization: `Bearer ${token}`, cookie: `session=${token}`, ...headers },
      });
      await res.body.dump();
      return res.statusCode;
    };

    expect(await call('/docs/a?q=1', alice, { 'x-request-id': 'req-1' })).toBe(200); // exchange
    expect(await call('/docs/b', alice)).toBe(200); // cache hit
    expect(await call('/docs/c', bob)).toBe(200); // exchange
    expect(await call('/docs/d', forged)).toBe(401); // AS invalid_grant
    expect(await call('/admin/x', bob)).toBe(403); // AS invalid_scope
    expect(await call('/down/x', alice)).toBe(502); // exchange, then upstream refused
    expect(await call('/nowhere', alice)).toBe(404);
    expect(await call('/docs/e', 'not.a.jwt')).toBe(401);

    writeFileSync(file, stringify(raw(['documents:read', 'documents:write'])));
    expect(reloader.reload('SIGHUP').ok).toBe(true);
    expect(await call('/docs/f', alice)).toBe(200); // new scopes: exchange
    writeFileSync(file, 'routes: []\nauthorizationServer: {}\n');
    expect(reloader.reload('SIGHUP').ok).toBe(false);

    const delegated = upstream.requests.map((r) => String(r.headers.authorization).replace(/^Bearer /, ''));
    expect(delegated).toHaveLength(4);
    expect(new Set(delegated).size).toBe(3);
    const secrets = [alice, bob, forged, 'not.a.jwt', CLIENT_SECRET, ...delegated];
    const text = proxy.logs.text();
    for (const secret of secrets) {
      expect(text).not.toContain(secret);
      // Not even the signature part alone (a JWT's most secret-like piece).
      const signature = secret.split('.')[2];
      if (signature && signature.length > 20) expect(text).not.toContain(signature);
    }

    const lines = proxy.logs.lines();
    const access = lines.filter((l) => l.access === true);
    expect(access).toHaveLength(9);
    expect(access[0]).toMatchObject({
      level: 'info',
      msg: 'request',
      reqId: 'req-1',
      route: 'docs',
      method: 'GET',
      path: '/a',
      status: 200,
      cache: 'miss',
      sub: 'alice',
      durationMs: expect.any(Number),
    });
    expect(access.map((l) => [l.route, l.status, l.cache, l.sub])).toEqual([
      ['docs', 200, 'miss', 'alice'],
      ['docs', 200, 'hit', 'alice'],
      ['docs', 200, 'miss', 'bob'],
      ['docs', 401, undefined, 'alice'],
      ['admin', 403, undefined, 'bob'],
      ['down', 502, 'miss', 'alice'],
      [undefined, 404, undefined, undefined],
      ['docs', 401, undefined, undefined],
      ['docs', 200, 'miss', 'alice'],
    ]);
    for (const l of access) expect(typeof l.reqId).toBe('string');
    expect(access.find((l) => l.route === 'down')?.upstreamStatus).toBeUndefined(); // never answered

    // One audit event per exchange, routable by its `audit` field.
    const audit = lines.filter((l) => l.audit !== undefined);
    expect(audit.map((l) => l.audit)).toEqual(Array(as.exchanges.length).fill('token_exchange'));
    expect(audit.map((l) => [l.route, l.sub, l.outcome])).toEqual([
      ['docs', 'alice', 'success'],
      ['docs', 'bob', 'success'],
      ['docs', 'alice', 'invalid_grant'],
      ['admin', 'bob', 'invalid_scope'],
      ['down', 'alice', 'success'],
      ['docs', undefined, 'invalid_grant'],
      ['docs', 'alice', 'success'],
    ]);
    expect(audit[0]).toMatchObject({
      level: 'info',
      msg: 'token exchanged',
      reqId: 'req-1',
      requestedScopes: ['documents:read'],
      grantedScopes: ['documents:read'],
      audience: 'https://docs.example',
      lifetimeSeconds: 300,
      jti: expect.any(String),
    });
    expect(audit[6]).toMatchObject({ requestedScopes: ['documents:read', 'documents:write'] });

    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'error', msg: 'request failed', code: 'bad_gateway', status: 502 }),
    );
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'config reloaded', applied: ['routes[0].scopes'] }));
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'error',
        problems: expect.arrayContaining([expect.stringMatching(/^routes: /)]),
      }),
    );
  });

  // Regression: a short response can end (and record() run) before forward()'s await resumes.
  it('access lines carry the upstream status', async () => {
    const as = await startAs();
    closers.push(() => as.close());
    const upstream = await startUpstream((_req, res) => {
      res.writeHead(201);
      res.end('made');
    });
    closers.push(() => upstream.close());
    const proxy = await startProxy({
      as,
      config: { routes: [{ name: 'docs', match: { pathPrefix: '/' }, upstream: upstream.url }] },
    });
    closers.push(() => proxy.close());
    const res = await request(`${proxy.url}/x`, {
      headers: { authorization: `Bearer ${await as.userToken('alice', [])}` },
    });
    await res.body.dump();
    expect(proxy.logs.lines().find((l) => l.access === true)).toMatchObject({ status: 201, upstreamStatus: 201 });
  });
});
