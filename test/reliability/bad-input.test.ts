import { connect } from 'node:net';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { useClosers } from '../helpers/closers.js';
import { rawRequest, statusOf, waitForAsync } from '../helpers/raw-http.js';
import { startRig, userTokens } from './harness.js';

const closers = useClosers();

function bodyOf(raw: string): Record<string, unknown> {
  return JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
}

describe('slow headers, duplicate Host, /readyz on a garbage-answering AS', () => {
  it('request headers that do not arrive in time get 408 with a JSON body', async () => {
    const rig = await startRig(closers, { config: { clientTimeouts: { headersMs: 300 } } });
    const { hostname, port } = new URL(rig.proxy.url);
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), hostname, () =>
        socket.write('GET /documents/a HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1'),
      );
      let data = '';
      socket.on('data', (d) => {
        data += d.toString('latin1');
      });
      socket.on('close', () => resolve(data));
      socket.on('error', reject);
      setTimeout(() => socket.destroy(), 10_000).unref();
    });
    expect(statusOf(raw)).toBe(408);
    expect(raw.toLowerCase()).toContain('connection: close');
    expect(bodyOf(raw)).toEqual({
      error: 'invalid_request',
      error_description: 'request headers not received in time',
    });
  }, 20_000);

  it('a request with two Host headers is refused with 400 and never forwarded (RFC 9112 §3.2)', async () => {
    const rig = await startRig(closers);
    const [token] = await userTokens(rig.as, 1);
    const raw = await rawRequest(
      rig.proxy.url,
      `GET /documents/a HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
    );
    expect(statusOf(raw)).toBe(400);
    expect(bodyOf(raw)).toMatchObject({ error: 'invalid_request' });
    expect(rig.upstream.requests).toHaveLength(0);
    expect(rig.as.exchanges).toHaveLength(0);
    // One Host is fine.
    const ok = await rawRequest(
      rig.proxy.url,
      `GET /documents/a HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
    );
    expect(statusOf(ok)).toBe(200);
  });

  it('/readyz turns 503 while the AS answers 200 with garbage, and ready again when it recovers', async () => {
    const rig = await startRig(closers);
    const readyz = async () => {
      const res = await request(`${rig.proxy.adminUrl}/readyz`);
      return { status: res.statusCode, body: (await res.body.json()) as { reasons?: string[] } };
    };
    expect((await readyz()).status).toBe(200);
    rig.as.faults.mode = 'garbage';
    await rig.proxy.proxy.readiness.probe();
    const down = await readyz();
    expect(down.status).toBe(503);
    expect(down.body.reasons?.join(' ')).toMatch(/authorization_server: answered HTTP 200 without a JSON body/);
    rig.as.faults.mode = 'ok';
    await rig.proxy.proxy.readiness.probe();
    await waitForAsync(async () => (await readyz()).status === 200, 5_000, 'ready again');
  });
});
