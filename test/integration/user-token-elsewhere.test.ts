import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { withoutAccessTokenParam } from '../../src/proxy/user-token-elsewhere.js';
import { useClosers } from '../helpers/closers.js';
import { startAs, type TestAuthorizationServer } from '../helpers/start-as.js';
import { startProxy, type TestProxy } from '../helpers/start-proxy.js';
import { startUpstream, type TestUpstream } from '../helpers/start-upstream.js';

/** The user token never leaves the pod, wherever else the agent puts it. */
const closers = useClosers();

let as: TestAuthorizationServer;
let upstream: TestUpstream;
let proxy: TestProxy;

async function setup(): Promise<string> {
  as = await startAs();
  closers.push(() => as.close());
  upstream = await startUpstream();
  closers.push(() => upstream.close());
  proxy = await startProxy({
    as,
    config: {
      routes: [
        { name: 'docs', match: { pathPrefix: '/docs' }, upstream: upstream.url, scopes: ['documents:read'] },
        { name: 'tools', match: { pathPrefix: '/mcp' }, upstream: upstream.url, scopes: ['mcp:tools:read'], mcp: {} },
      ],
    },
  });
  closers.push(() => proxy.close());
  return as.userToken('alice', ['documents:read', 'mcp:tools:read']);
}

async function send(
  path: string,
  user: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
) {
  const res = await request(`${proxy.url}${path}`, {
    method: (init.method ?? 'GET') as 'GET',
    headers: { authorization: `Bearer ${user}`, ...init.headers },
    ...(init.body === undefined ? {} : { body: init.body }),
  });
  const text = await res.body.text();
  return { status: res.statusCode, text };
}

/** Every character percent-encoded: still the same token to a server that decodes. */
const encodeAll = (s: string) =>
  [...s].map((c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`).join('');

describe('the user token in another carrier', () => {
  it('is refused with 400 invalid_request in every carrier; nothing reaches the upstream; no log line holds it', async () => {
    const user = await setup();
    const json = (t: string) =>
      JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: { token: t } } });
    const carriers: Array<[string, Parameters<typeof send>[2] & { path?: string }]> = [
      ['query access_token (RFC 6750 §2.3)', { path: `/docs/a?access_token=${user}` }],
      ['query, percent-encoded', { path: `/docs/a?t=${encodeAll(user)}` }],
      ['path', { path: `/docs/${user}` }],
      ['path, percent-encoded', { path: `/docs/${encodeAll(user)}` }],
      ['cookie', { headers: { cookie: `theme=dark; session=${user}` } }],
      ['cookie, percent-encoded', { headers: { cookie: `session=${encodeAll(user)}` } }],
      ['x-access-token', { headers: { 'x-access-token': user } }],
      ['x-forwarded-access-token', { headers: { 'x-forwarded-access-token': user } }],
      ['another header, with a scheme', { headers: { 'x-upstream-auth': `Bearer ${user}` } }],
      [
        'form body (RFC 6750 §2.2)',
        {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: `a=1&access_token=${encodeURIComponent(user)}`,
        },
      ],
      [
        'form body, percent-encoded',
        {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: `access_token=${encodeAll(user)}`,
        },
      ],
      [
        'JSON body',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: user }) },
      ],
      [
        'MCP body',
        {
          path: '/mcp',
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
          body: json(user),
        },
      ],
    ];
    for (const [name, c] of carriers) {
      const res = await send(c.path ?? '/docs/a', user, c);
      expect(res.status, name).toBe(400);
      expect(JSON.parse(res.text), name).toMatchObject({ error: 'invalid_request' });
      expect(res.text, name).not.toContain(user);
    }
    expect(upstream.requests).toHaveLength(0);
    const logs = proxy.logs.text();
    expect(logs).not.toContain(user);
    expect(logs).not.toContain(user.split('.')[2]!);
    const refused = proxy.logs.lines().filter((l) => l.msg === 'request refused');
    expect(refused).toHaveLength(carriers.length);
    expect(
      refused.every(
        (l) => typeof l.detail === 'string' && (l.detail as string).startsWith('the user token was also found in'),
      ),
    ).toBe(true);
  });

  it('strips an access_token query parameter holding anything else; other parameters arrive unchanged', async () => {
    const user = await setup();
    expect((await send('/docs/a?x=1&access_token=other-token&y=%20z&ACCESS%5FTOKEN=again', user)).status).toBe(200);
    expect((await send('/docs/b?access_token=other-token', user)).status).toBe(200);
    // The MCP route is the same; and a plain request is untouched.
    expect((await send('/docs/c?access_tokens=1', user)).status).toBe(200);
    expect(upstream.requests.map((r) => r.url)).toEqual(['/docs/a?x=1&y=%20z', '/docs/b', '/docs/c?access_tokens=1']);
    expect(upstream.requests.map((r) => r.headers.authorization)).not.toContain(`Bearer ${user}`);
  });

  it('withoutAccessTokenParam keeps everything but access_token, byte for byte', () => {
    expect(withoutAccessTokenParam('/a')).toBe('/a');
    expect(withoutAccessTokenParam('/a?b=1')).toBe('/a?b=1');
    expect(withoutAccessTokenParam('/a?access_token=x')).toBe('/a');
    expect(withoutAccessTokenParam('/a?b=%2F&access_token=x&c')).toBe('/a?b=%2F&c');
    expect(withoutAccessTokenParam('/a?acc%65ss_token=x&access_token&b=1')).toBe('/a?b=1');
  });
});
