import { mkdirSync, mkdtempSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useClosers } from '../helpers/closers.js';
import { waitFor } from '../helpers/raw-http.js';
import { startAs, type TestAuthorizationServer } from '../helpers/start-as.js';
import { startProxy, type TestProxy } from '../helpers/start-proxy.js';
import { startUpstream, type TestUpstream } from '../helpers/start-upstream.js';

const closers = useClosers();

let as: TestAuthorizationServer;
beforeAll(async () => {
  as = await startAs();
});
afterAll(() => as.close());

/**
 * The layout the kubelet uses for projected service-account tokens: `token` -> `..data/token`,
 * `..data` -> a timestamped directory; a rotation writes a new directory and swaps `..data`
 * atomically with a rename.
 */
function kubeletVolume(firstToken: string): { file: string; rotate(token: string): void } {
  const dir = mkdtempSync(join(tmpdir(), 'dp-sa-'));
  let n = 0;
  const writeVersion = (token: string): string => {
    const version = `..2026_11_28_00_00_0${n++}`;
    mkdirSync(join(dir, version));
    writeFileSync(join(dir, version, 'token'), token);
    return version;
  };
  symlinkSync(writeVersion(firstToken), join(dir, '..data'));
  symlinkSync(join('..data', 'token'), join(dir, 'token'));
  return {
    file: join(dir, 'token'),
    rotate(token) {
      const version = writeVersion(token);
      symlinkSync(version, join(dir, '..data_tmp'));
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    },
  };
}

async function setup(file: string): Promise<{ upstream: TestUpstream; proxy: TestProxy; before: number }> {
  const upstream = await startUpstream();
  closers.push(() => upstream.close());
  const proxy = await startProxy({
    as,
    config: {
      actorToken: { file },
      routes: [{ name: 'r', match: { pathPrefix: '/r' }, upstream: upstream.url, scopes: ['documents:read'] }],
    },
  });
  closers.push(() => proxy.close());
  return { upstream, proxy, before: as.exchanges.length };
}

async function call(proxy: TestProxy, user: string): Promise<number> {
  const res = await request(`${proxy.url}/r/a`, { headers: { authorization: `Bearer ${user}` } });
  await res.body.dump();
  return res.statusCode;
}

const actOf = (upstream: TestUpstream, i: number) =>
  decodeJwt((upstream.requests[i]!.headers.authorization ?? '').slice(7)).act;

describe('actor token from a file', () => {
  it('a kubelet-style rotation mid-test: the next exchange sends the new actor token and makes a new cache entry', async () => {
    const volume = kubeletVolume(await as.issueActorToken({ sub: 'system:serviceaccount:agents:v1' }));
    const { upstream, proxy, before } = await setup(volume.file);
    const user = await as.userToken('alice', ['documents:read']);
    expect(await call(proxy, user)).toBe(200);
    expect(await call(proxy, user)).toBe(200);
    expect(as.exchanges.length - before).toBe(1);
    expect(actOf(upstream, 0)).toEqual({ sub: 'system:serviceaccount:agents:v1' });

    const rotated = await as.issueActorToken({ sub: 'system:serviceaccount:agents:v2' });
    volume.rotate(rotated);
    await waitFor(() => proxy.logs.lines().some((l) => l.msg === 'actor token reloaded'), 5_000, 'actor token reload');

    expect(await call(proxy, user)).toBe(200);
    expect(as.exchanges.length - before).toBe(2);
    expect(as.exchanges.at(-1)!.params.actor_token).toBe(rotated);
    expect(actOf(upstream, 2)).toEqual({ sub: 'system:serviceaccount:agents:v2' });
    // The actor is part of the cache key: the new identity has its own entry.
    expect(proxy.proxy.tokens.cache.size).toBe(2);
    expect(proxy.logs.text()).not.toContain(rotated);
  });

  it('a plain rewrite of the file is picked up too', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'dp-actor-')), 'token');
    writeFileSync(file, await as.issueActorToken({ sub: 'agent-a' }));
    const { upstream, proxy } = await setup(file);
    const user = await as.userToken('bob', ['documents:read']);
    expect(await call(proxy, user)).toBe(200);
    writeFileSync(file, await as.issueActorToken({ sub: 'agent-b' }));
    await waitFor(() => proxy.logs.lines().some((l) => l.msg === 'actor token reloaded'), 5_000, 'actor token reload');
    expect(await call(proxy, user)).toBe(200);
    expect(actOf(upstream, 1)).toEqual({ sub: 'agent-b' });
  });

  it('an empty file during a rotation keeps the last good actor token', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'dp-actor-')), 'token');
    writeFileSync(file, await as.issueActorToken({ sub: 'agent-a' }));
    const { upstream, proxy } = await setup(file);
    writeFileSync(file, '');
    const user = await as.userToken('carol', ['documents:read']);
    expect(await call(proxy, user)).toBe(200);
    expect(actOf(upstream, 0)).toEqual({ sub: 'agent-a' });
  });
});
