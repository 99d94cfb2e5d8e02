import { decodeJwt } from 'jose';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { type DevSetup, startDevSetup } from '../../src/dev/dev-setup.js';
import { createLogger } from '../../src/observability/logger.js';
import { createLogSink } from '../helpers/log-sink.js';

let setup: DevSetup | undefined;
afterEach(async () => {
  await setup?.close();
  setup = undefined;
});

describe('--dev setup', () => {
  it('the printed curl reaches the echo upstream with a delegated token, never the user token', async () => {
    setup = await startDevSetup({
      host: '127.0.0.1',
      proxyPort: 0,
      adminPort: 0,
      asPort: 0,
      upstreamPort: 0,
      logger: createLogger({ level: 'info', destination: createLogSink() }),
    });
    const match = /-H "Authorization: Bearer ([^"]+)" (\S+)$/.exec(setup.curl);
    expect(match).not.toBeNull();
    const [, token, url] = match!;
    expect(url!.startsWith(setup.proxyUrl)).toBe(true);
    const res = await request(url!, { headers: { authorization: `Bearer ${token}` } });
    const text = await res.body.text();
    expect(res.statusCode).toBe(200);
    expect(text).not.toContain(token!);
    const body = JSON.parse(text) as { path: string; delegatedToken: { claims: Record<string, unknown> } };
    expect(body.path).toBe('/hello');
    expect(body.delegatedToken.claims).toMatchObject({
      sub: 'alice',
      scope: 'documents:read',
      aud: setup.upstream.url,
    });
    const received = setup.upstream.requests[0]!.headers.authorization!.slice(7);
    expect(received).not.toBe(token);
    expect(decodeJwt(received).client_id).toBe('delegate-proxy-dev');
  });
});
