import { writeFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createProxy } from '../../src/app.js';
import { loadConfigFile } from '../../src/config/load.js';
import { createLogger } from '../../src/observability/logger.js';
import { type ConfigReloader, createConfigReloader, diffPaths, type ReloadResult } from '../../src/server/reload.js';
import { startCli, started, writeConfig } from '../helpers/cli-process.js';
import { useClosers } from '../helpers/closers.js';
import { createLogSink, type LogSink } from '../helpers/log-sink.js';
import { CLIENT_ID, startAs, type TestAuthorizationServer } from '../helpers/start-as.js';
import { startUpstream } from '../helpers/start-upstream.js';

const closers = useClosers();

const SCOPES = ['documents:read', 'documents:write', 'files:read'];

function configFor(
  as: TestAuthorizationServer,
  upstream: string,
  overrides: { scopes?: string[]; cache?: object; listen?: string } = {},
) {
  return {
    listen: overrides.listen ?? '127.0.0.1:0',
    admin: '127.0.0.1:0',
    authorizationServer: { tokenEndpoint: as.tokenEndpoint, clientId: CLIENT_ID, clientSecretFile: as.secretFile },
    ...(overrides.cache ? { cache: overrides.cache } : {}),
    routes: [
      { name: 'docs', match: { pathPrefix: '/docs' }, upstream, scopes: overrides.scopes ?? ['documents:read'] },
    ],
  };
}

/** The proxy from a config file plus a reloader on that file, as main.ts wires them. */
async function setup() {
  const as = await startAs({ accessTokenTtlSeconds: 300 });
  closers.push(() => as.close());
  const upstream = await startUpstream();
  closers.push(() => upstream.close());
  const file = writeConfig(configFor(as, upstream.url));
  const config = loadConfigFile(file, {});
  const logs: LogSink = createLogSink();
  const logger = createLogger({ level: 'info', destination: logs });
  const proxy = createProxy(config, {
    logger,
    registry: new Registry(),
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
  });
  const { url } = await proxy.start();
  const results: ReloadResult[] = [];
  let notify: (() => void) | undefined;
  const reloader: ConfigReloader = createConfigReloader({
    file,
    env: {},
    logger,
    running: config,
    apply: (next) => proxy.applyConfig(next),
    setLogLevel: (level) => {
      logger.level = level;
    },
    debounceMs: 20,
    onResult: (r) => {
      results.push(r);
      notify?.();
    },
  });
  closers.push(async () => {
    reloader.close();
    await proxy.close();
  });
  /** Waits for the next reload the file watcher triggers (a real fs event). */
  const nextReload = () =>
    new Promise<ReloadResult>((resolve, reject) => {
      const count = results.length;
      const timer = setTimeout(() => reject(new Error('no reload after the file changed')), 5_000);
      notify = () => {
        if (results.length > count) {
          clearTimeout(timer);
          resolve(results[results.length - 1]!);
        }
      };
    });
  const write = (cfg: unknown) => writeFileSync(file, typeof cfg === 'string' ? cfg : stringify(cfg));
  const get = async (path: string, token: string) => {
    const res = await request(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    await res.body.dump();
    return res.statusCode;
  };
  return { as, upstream, proxy, reloader, logs, write, nextReload, get };
}

describe('config reload', () => {
  it('applies a route scope change from the file: the next exchange asks for the new scopes', async () => {
    const { as, upstream, logs, write, nextReload, get } = await setup();
    const user = await as.userToken('alice', SCOPES);
    expect(await get('/docs/a', user)).toBe(200);
    expect(as.exchanges.at(-1)?.params.scope).toBe('documents:read');

    const reloaded = nextReload();
    write(configFor(as, upstream.url, { scopes: ['documents:read', 'documents:write'] }));
    expect(await reloaded).toEqual({
      ok: true,
      trigger: 'file_change',
      applied: ['routes[0].scopes'],
      restartRequired: [],
    });

    expect(await get('/docs/a', user)).toBe(200);
    expect(as.exchanges).toHaveLength(2);
    expect(as.exchanges.at(-1)?.params.scope).toBe('documents:read documents:write');
    expect(logs.lines()).toContainEqual(
      expect.objectContaining({
        level: 'info',
        msg: 'config reloaded',
        trigger: 'file_change',
        applied: ['routes[0].scopes'],
        routes: ['docs'],
      }),
    );
  });

  it('a reload that changes subjectToken.type does not reuse tokens exchanged under the old type', async () => {
    const { as, upstream, reloader, write, get } = await setup();
    const user = await as.userToken('alice', SCOPES);
    expect(await get('/docs/a', user)).toBe(200);
    expect(await get('/docs/a', user)).toBe(200);
    expect(as.exchanges).toHaveLength(1);
    write({ ...configFor(as, upstream.url), subjectToken: { type: 'urn:ietf:params:oauth:token-type:jwt' } });
    expect(reloader.reload('SIGHUP')).toMatchObject({ ok: true, applied: ['subjectToken.type'] });
    expect(await get('/docs/a', user)).toBe(200);
    expect(as.exchanges).toHaveLength(2);
    expect(as.exchanges.at(-1)?.params.subject_token_type).toBe('urn:ietf:params:oauth:token-type:jwt');
  });

  it('rejects a broken file, logs every problem and keeps the running config', async () => {
    const { as, upstream, proxy, reloader, logs, write, get } = await setup();
    const user = await as.userToken('alice', SCOPES);
    const before = proxy.runtime();

    const broken = configFor(as, upstream.url) as Record<string, unknown>;
    broken.routes = [{ name: 'Bad Name', match: { pathPrefix: 'no-slash' }, upstream: 'ftp://x', scopes: ['a b'] }];
    broken.colour = 'blue';
    write(broken);
    const result = reloader.reload('SIGHUP');
    expect(result.ok).toBe(false);
    const problems = result.ok ? [] : result.problems;
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^routes\[0\]\.name: /),
        expect.stringMatching(/^routes\[0\]\.match\.pathPrefix: /),
        expect.stringMatching(/^routes\[0\]\.upstream: /),
        expect.stringMatching(/^routes\[0\]\.scopes\[0\]: /),
        expect.stringMatching(/colour/),
      ]),
    );
    const line = logs.lines().find((l) => l.msg?.toString().startsWith('config reload rejected'));
    expect(line).toMatchObject({ level: 'error', trigger: 'SIGHUP', problems });
    for (const p of problems) expect(String(line?.msg)).toContain(p);

    write('routes: [\n  - name: x\n    oops: : :\n');
    const yamlResult = reloader.reload('SIGHUP');
    expect(yamlResult.ok).toBe(false);

    expect(proxy.runtime()).toBe(before);
    expect(await get('/docs/a', user)).toBe(200);
    expect(as.exchanges.at(-1)?.params.scope).toBe('documents:read');
  });

  it('applies cache TTL settings live and says a listener change needs a restart', async () => {
    const { as, upstream, proxy, reloader, logs, write, get } = await setup();
    write(
      configFor(as, upstream.url, {
        listen: '127.0.0.1:1',
        cache: { maxTtlSeconds: 60, refreshAheadSeconds: 10, maxEntries: 5 },
      }),
    );
    const result = reloader.reload('SIGHUP');
    expect(result).toEqual({
      ok: true,
      trigger: 'SIGHUP',
      applied: ['cache.refreshAheadSeconds', 'cache.maxTtlSeconds'],
      restartRequired: ['listen', 'cache.maxEntries'],
    });
    expect(logs.lines()).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        restartRequired: ['listen', 'cache.maxEntries'],
        msg: 'listener address change (listen) requires a restart; other live changes were applied',
      }),
    );
    expect(proxy.runtime().cache).toMatchObject({ maxTtlSeconds: 60, refreshAheadSeconds: 10, maxEntries: 10_000 });

    // The AS issues 300 s; the reloaded cap of 60 s applies to the next exchange.
    expect(await get('/docs/a', await as.userToken('alice', SCOPES))).toBe(200);
    expect((await proxy.metrics.tokenTtlCapped.get()).values[0]?.value).toBe(1);
    expect((await proxy.metrics.tokenTtl.get()).values.find((v) => v.metricName?.endsWith('_sum'))?.value).toBe(60);
  });

  it('reloads on SIGHUP in the real process', async () => {
    const as = await startAs();
    closers.push(() => as.close());
    const upstream = await startUpstream();
    closers.push(() => upstream.close());
    const file = writeConfig(configFor(as, upstream.url));
    const cli = startCli(['--config', file]);
    closers.push(() => cli.stop());
    const { url } = await started(cli);
    const user = await as.userToken('alice', SCOPES);
    const headers = { authorization: `Bearer ${user}` };
    await (await request(`${url}/docs/a`, { headers })).body.dump();
    expect(as.exchanges.at(-1)?.params.scope).toBe('documents:read');

    writeFileSync(file, stringify(configFor(as, upstream.url, { scopes: ['files:read'] })));
    cli.child.kill('SIGHUP');
    await cli.waitForLine((l) => l.msg === 'config reloaded' && Array.isArray(l.applied), 'the reload');
    const res = await request(`${url}/docs/a`, { headers });
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    expect(as.exchanges.at(-1)?.params.scope).toBe('files:read');
  });
});

describe('diffPaths', () => {
  it('names changed leaves, whole scalar lists, and added or removed keys', () => {
    expect(diffPaths({ a: 1, b: { c: [1, 2] } }, { a: 1, b: { c: [1, 2] } })).toEqual([]);
    expect(diffPaths({ a: 1, b: { c: [1, 2] } }, { a: 2, b: { c: [1, 2, 3] }, d: true })).toEqual(['a', 'b.c', 'd']);
    expect(diffPaths({ r: [{ n: 'x', s: ['a'] }] }, { r: [{ n: 'x', s: ['b'] }] })).toEqual(['r[0].s[0]']);
    expect(diffPaths({ r: [{ n: 'x' }] }, { r: [{ n: 'x' }, { n: 'y' }] })).toEqual(['r[1]']);
  });
});
