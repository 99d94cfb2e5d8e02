import { decodeJwt } from 'jose';
import { describe, expect, it, vi } from 'vitest';
import { useClosers } from '../helpers/closers.js';
import { rawRequest } from '../helpers/raw-http.js';
import { startAs } from '../helpers/start-as.js';
import { startProxy } from '../helpers/start-proxy.js';
import { startUpstream } from '../helpers/start-upstream.js';

const closers = useClosers();

/** Several requests pipelined on one TCP connection, the last one closing it. */
function onOneConnection(host: string, authorizations: string[]): string {
  return authorizations
    .map((auth, i) => {
      const last = i === authorizations.length - 1;
      return `GET /documents/${i} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: ${auth}\r\n${last ? 'Connection: close\r\n' : ''}\r\n`;
    })
    .join('');
}

function statuses(raw: string): number[] {
  return [...raw.matchAll(/^HTTP\/1\.1 (\d{3}) /gm)].map((m) => Number(m[1]));
}

describe('the user token on a keep-alive connection', () => {
  it('is described once per distinct value on a connection, and each request is served as its own user', async () => {
    const as = await startAs();
    closers.push(() => as.close());
    const upstream = await startUpstream();
    closers.push(() => upstream.close());
    const proxy = await startProxy({
      as,
      config: {
        routes: [
          {
            name: 'documents',
            match: { pathPrefix: '/documents' },
            upstream: upstream.url,
            scopes: ['documents:read'],
          },
        ],
      },
    });
    closers.push(() => proxy.close());
    const alice = await as.userToken('alice', ['documents:read']);
    const bob = await as.userToken('bob', ['documents:read']);
    const describe = vi.spyOn(proxy.proxy.tokens, 'describe');
    const host = new URL(proxy.url).host;

    const raw = await rawRequest(
      proxy.url,
      onOneConnection(host, [
        `Bearer ${alice}`,
        `Bearer ${alice}`,
        `Bearer ${bob}`,
        `Bearer ${alice}`,
        `Bearer ${alice}`,
        `Bearer ${alice}!`,
      ]),
    );

    // The malformed value after five good ones on the same connection is still refused.
    expect(statuses(raw)).toEqual([200, 200, 200, 200, 200, 401]);
    // Pipelined requests are handled concurrently: matched to their answers by path, not by order.
    const subs = Object.fromEntries(
      upstream.requests.map((r) => [r.url, decodeJwt((r.headers.authorization ?? '').slice('Bearer '.length)).sub]),
    );
    expect(subs).toEqual({
      '/documents/0': 'alice',
      '/documents/1': 'alice',
      '/documents/2': 'bob',
      '/documents/3': 'alice',
      '/documents/4': 'alice',
    });
    for (const r of upstream.requests) {
      expect(r.rawHeaders.join('\n')).not.toContain(alice);
      expect(r.rawHeaders.join('\n')).not.toContain(bob);
    }
    // alice, bob, alice again (the value changed): three descriptions for five served requests;
    // the malformed one is refused before it is described.
    expect(describe).toHaveBeenCalledTimes(3);
  });
});
