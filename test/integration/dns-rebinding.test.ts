import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { resolveConfig } from '../../src/config/load.js';
import { useClosers } from '../helpers/closers.js';
import { configProblems } from '../helpers/config-problems.js';
import { useFileAs } from '../helpers/file-as.js';
import { rawRequest, statusOf } from '../helpers/raw-http.js';
import { CLIENT_ID } from '../helpers/start-as.js';
import { startProxy, type TestProxy } from '../helpers/start-proxy.js';
import { startUpstream, type TestUpstream } from '../helpers/start-upstream.js';
import { startWsUpstream, type TestWsUpstream } from '../helpers/start-ws-upstream.js';

const closers = useClosers();

// One AS for the file; proxy and upstreams per test.
const fileAs = useFileAs();

interface Setup {
  proxy: TestProxy;
  upstream: TestUpstream;
  hostUpstream: TestUpstream;
  ws: TestWsUpstream;
  user: string;
  port: string;
}

async function setup(config: Record<string, unknown> = {}): Promise<Setup> {
  const upstream = await startUpstream();
  closers.push(() => upstream.close());
  const hostUpstream = await startUpstream();
  closers.push(() => hostUpstream.close());
  const ws = await startWsUpstream();
  closers.push(() => ws.close());
  const proxy = await startProxy({
    as: fileAs(),
    config: {
      routes: [
        { name: 'docs', match: { pathPrefix: '/docs' }, upstream: upstream.url, scopes: ['documents:read'] },
        { name: 'live', match: { pathPrefix: '/live' }, upstream: ws.url, scopes: ['documents:read'] },
        { name: 'by-host', match: { host: 'docs.internal.example' }, upstream: hostUpstream.url, scopes: [] },
      ],
      ...config,
    },
  });
  closers.push(() => proxy.close());
  const user = await fileAs().userToken('alice', ['documents:read']);
  return { proxy, upstream, hostUpstream, ws, user, port: new URL(proxy.url).port };
}

function get(s: Setup, headers: Record<string, string>, path = '/docs/a'): Promise<string> {
  const lines = Object.entries({ authorization: `Bearer ${s.user}`, connection: 'close', ...headers })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return rawRequest(s.proxy.url, `GET ${path} HTTP/1.1\r\n${lines}\r\n`);
}

function upgrade(s: Setup, headers: Record<string, string>): Promise<string> {
  return get(
    s,
    {
      connection: 'Upgrade',
      upgrade: 'websocket',
      'sec-websocket-version': '13',
      'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      ...headers,
    },
    '/live/x',
  );
}

function headersOf(raw: string): string {
  return raw.slice(0, raw.indexOf('\r\n\r\n')).toLowerCase();
}

function bodyOf(raw: string): unknown {
  return JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4));
}

const REFUSED = {
  error: 'host_not_allowed',
  error_description: 'the Host or Origin header names a host this proxy does not serve',
};

/** Requests, handshakes and exchanges seen so far by the AS and the upstreams. */
function contacts(s: Setup): number[] {
  return [
    s.upstream.requests.length,
    s.hostUpstream.requests.length,
    s.ws.handshakes.length,
    fileAs().exchanges.length,
  ];
}

/** 403 host_not_allowed as JSON, no Bearer challenge, and nothing reached the AS or an upstream. */
async function expectRefused(s: Setup, send: () => Promise<string>): Promise<void> {
  const before = contacts(s);
  const raw = await send();
  expect(statusOf(raw)).toBe(403);
  expect(headersOf(raw)).toContain('content-type: application/json');
  expect(headersOf(raw)).not.toContain('www-authenticate');
  expect(bodyOf(raw)).toEqual(REFUSED);
  expect(raw).not.toContain(s.user);
  expect(contacts(s)).toEqual(before);
}

describe('DNS-rebinding protection: refused', () => {
  it('a Host that names another site (evil.example.com, with and without a port)', async () => {
    const s = await setup();
    await expectRefused(s, () => get(s, { host: 'evil.example.com' }));
    await expectRefused(s, () => get(s, { host: `evil.example.com:${s.port}` }));
    await expectRefused(s, () => get(s, { host: 'EVIL.example.com.' }));
    // A name that merely starts or ends like a served one.
    await expectRefused(s, () => get(s, { host: 'localhost.evil.example' }));
    await expectRefused(s, () => get(s, { host: 'evil-localhost' }));
    // Logged for the operator, who may need to add a name to allowedHosts.
    const line = s.proxy.logs.lines().find((l) => l.code === 'host_not_allowed');
    expect(line?.detail).toBe('Host not allowed: "evil.example.com"');
  });

  it('an Origin that names another site, even with a served Host (the conformance suite sends both)', async () => {
    const s = await setup();
    await expectRefused(s, () => get(s, { host: `127.0.0.1:${s.port}`, origin: 'http://evil.example.com' }));
    await expectRefused(s, () => get(s, { host: `localhost:${s.port}`, origin: `https://evil.example.com:${s.port}` }));
    await expectRefused(s, () => get(s, { host: 'evil.example.com', origin: 'http://evil.example.com' }));
    // An IP address as Host is allowed, but a page from another address may not call it.
    await expectRefused(s, () => get(s, { host: '10.1.2.3', origin: 'http://10.9.9.9' }));
  });

  it('an opaque, malformed or doubled Origin', async () => {
    const s = await setup();
    for (const origin of [
      'null',
      'not a url',
      'file:///etc',
      'ftp://localhost',
      'http://localhost, http://evil.example',
    ])
      await expectRefused(s, () => get(s, { host: 'localhost', origin }));
  });

  it('a WebSocket upgrade: same checks, same 403 JSON, no upstream handshake', async () => {
    const s = await setup();
    await expectRefused(s, () => upgrade(s, { host: 'evil.example.com' }));
    await expectRefused(s, () => upgrade(s, { host: `localhost:${s.port}`, origin: 'http://evil.example.com' }));
  });

  it('an MCP route refuses before the policy reads the body', async () => {
    const s = await setup({
      routes: [{ name: 'mcp', match: { pathPrefix: '/mcp' }, upstream: 'http://127.0.0.1:9', mcp: {} }],
    });
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x' } });
    await expectRefused(s, () =>
      rawRequest(
        s.proxy.url,
        `POST /mcp HTTP/1.1\r\nhost: evil.example.com\r\norigin: http://evil.example.com\r\nauthorization: Bearer ${s.user}\r\n` +
          `content-type: application/json\r\naccept: application/json, text/event-stream\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
      ),
    );
  });
});

describe('DNS-rebinding protection: allowed', () => {
  it('loopback names with any port or none, and IP addresses', async () => {
    const s = await setup();
    for (const host of [
      `127.0.0.1:${s.port}`,
      `localhost:${s.port}`,
      'LOCALHOST',
      '[::1]:8080', // a port mapping (kubectl port-forward, podman -p) changes the port the client sees
      '10.1.2.3:8080',
      '[fd00::1]',
    ]) {
      const raw = await get(s, { host });
      expect(statusOf(raw), host).toBe(200);
    }
    expect(s.upstream.requests).toHaveLength(6);
  });

  it('an Origin naming a served host, or the same address as Host', async () => {
    const s = await setup();
    for (const [host, origin] of [
      [`127.0.0.1:${s.port}`, `http://127.0.0.1:${s.port}`],
      [`localhost:${s.port}`, 'http://localhost:3000'],
      ['127.0.0.1', 'https://[::1]'],
      ['10.1.2.3:8080', 'http://10.1.2.3:8080'],
    ] as const) {
      const raw = await get(s, { host, origin });
      expect(statusOf(raw), `${host} ${origin}`).toBe(200);
    }
  });

  it('a host route: its host is a name the listener serves, and it still routes by host', async () => {
    const s = await setup();
    const raw = await get(s, { host: `docs.internal.example:${s.port}`, origin: 'https://docs.internal.example' });
    expect(statusOf(raw)).toBe(200);
    expect(s.hostUpstream.requests).toHaveLength(1);
    expect(s.upstream.requests).toHaveLength(0);
    await expectRefused(s, () => get(s, { host: 'other.internal.example' }));
  });

  it('allowedHosts: exact names and *.subdomains', async () => {
    const s = await setup({ allowedHosts: ['proxy.agents.example', '*.pods.example'] });
    expect(statusOf(await get(s, { host: 'proxy.agents.example:8080' }))).toBe(200);
    expect(statusOf(await get(s, { host: 'a.pods.example', origin: 'https://b.c.pods.example' }))).toBe(200);
    expect(s.upstream.requests).toHaveLength(2);
    s.upstream.requests.length = 0;
    await expectRefused(s, () => get(s, { host: 'pods.example' }));
    await expectRefused(s, () => get(s, { host: 'agents.example' }));
    await expectRefused(s, () => get(s, { host: 'xpods.example' }));
  });

  it('a WebSocket upgrade from a served host opens', async () => {
    const s = await setup();
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}/live/x`, {
      headers: { authorization: `Bearer ${s.user}`, host: `localhost:${s.port}` },
      origin: `http://localhost:${s.port}`,
    });
    closers.push(() => ws.terminate());
    await once(ws, 'open');
    expect(s.ws.handshakes).toHaveLength(1);
  });

  it('allowedHosts ["*"] turns the check off', async () => {
    const s = await setup({ allowedHosts: ['*'] });
    const raw = await get(s, { host: 'evil.example.com', origin: 'null' });
    expect(statusOf(raw)).toBe(200);
  });

  it('a reload applies allowedHosts at once', async () => {
    const s = await setup();
    await expectRefused(s, () => get(s, { host: 'new.agents.example' }));
    const config = resolveConfig(
      {
        authorizationServer: {
          tokenEndpoint: fileAs().tokenEndpoint,
          clientId: CLIENT_ID,
          clientSecretFile: fileAs().secretFile,
        },
        allowedHosts: ['new.agents.example'],
        routes: [
          { name: 'docs', match: { pathPrefix: '/docs' }, upstream: s.upstream.url, scopes: ['documents:read'] },
        ],
      },
      {},
    );
    s.proxy.proxy.applyConfig(config);
    expect(statusOf(await get(s, { host: 'new.agents.example' }))).toBe(200);
  });
});

describe('allowedHosts in the config', () => {
  const base = {
    authorizationServer: { tokenEndpoint: 'http://127.0.0.1:1/token', clientId: 'c', clientAuth: 'none' },
    routes: [{ name: 'r', match: { pathPrefix: '/' }, upstream: 'http://127.0.0.1:2' }],
  };

  it('is required when the listener is not on loopback, and names the fix', () => {
    expect(configProblems({ ...base, listen: '0.0.0.0:8080' })).toEqual([
      'allowedHosts: required when listen is not a loopback address: list the host names agents use to reach the proxy (IP addresses and localhost always work; [] for none), or ["*"] to accept any Host',
    ]);
    expect(configProblems({ ...base, listen: '[::]:8080' })).toHaveLength(1);
    expect(configProblems({ ...base, listen: '10.0.0.5:8080' })).toHaveLength(1);
    expect(configProblems({ ...base, listen: '0.0.0.0:8080', allowedHosts: [] })).toEqual([]);
    for (const listen of ['127.0.0.1:8080', '127.0.0.2:8080', '[::1]:8080', 'localhost:8080'])
      expect(configProblems({ ...base, listen }), listen).toEqual([]);
  });

  it('refuses entries that are not host names', () => {
    const problems = configProblems({ ...base, allowedHosts: ['ok.example', 'a.example:8080', 'http://x', '*x', ''] });
    expect(problems).toHaveLength(4);
    for (const p of problems) expect(p).toMatch(/^allowedHosts\[\d\]: must be a host name without port/);
  });
});
