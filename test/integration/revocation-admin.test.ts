import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { useClosers } from '../helpers/closers.js';
import { push } from '../helpers/ssf-transmitter.js';
import { ADMIN_TOKEN, admin, call, metricsText, nextSecondAfter, setupRevocation } from './revocation-setup.js';

const closers = useClosers();

describe('revocation admin API (POST/GET /revocations)', () => {
  it('answers 404 on every revocation endpoint when revocation is not configured', async () => {
    const { proxy } = await setupRevocation(closers, { revocation: false });
    expect((await admin(proxy.adminUrl, 'POST', { sub: 'alice' })).status).toBe(404);
    expect((await admin(proxy.adminUrl, 'GET')).status).toBe(404);
    expect((await push(proxy.adminUrl, 'x.y.z', 'Bearer x')).status).toBe(404);
  });

  it('refuses a missing or wrong admin secret with 401 JSON and changes nothing', async () => {
    const { as, proxy } = await setupRevocation(closers);
    const alice = await as.userToken('alice', ['documents:read']);
    for (const token of [null, 'wrong-secret', `${ADMIN_TOKEN}x`, ADMIN_TOKEN.slice(0, -1)]) {
      const res = await admin(proxy.adminUrl, 'POST', { sub: 'alice' }, token);
      expect(res.status, String(token)).toBe(401);
      expect(res.json).toMatchObject({ error: 'invalid_token' });
    }
    expect((await admin(proxy.adminUrl, 'GET', undefined, null)).status).toBe(401);
    expect((await call(`${proxy.url}/docs/1`, alice)).status).toBe(200);
  });

  it('revokes a user: cached tokens evicted, old user tokens refused with 401 before any exchange, others unaffected, newer tokens pass', async () => {
    const { as, upstream, proxy } = await setupRevocation(closers);
    const alice = await as.userToken('alice', ['documents:read']);
    const bob = await as.userToken('bob', ['documents:read']);
    expect((await call(`${proxy.url}/docs/1`, alice)).status).toBe(200);
    expect((await call(`${proxy.url}/docs/1`, bob)).status).toBe(200);
    const exchanges = as.exchanges.length;

    const revoked = await admin(proxy.adminUrl, 'POST', { sub: 'alice' });
    expect(revoked).toEqual({ status: 200, json: { evicted: 1, closedStreams: 0 } });
    const revokedAt = Date.now();

    const refused = await call(`${proxy.url}/docs/2`, alice);
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body)).toEqual({
      error: 'invalid_token',
      error_description: 'the user token has been revoked',
    });
    expect(refused.challenge).toBe('Bearer realm="delegate-proxy", error="invalid_token"');
    expect(as.exchanges.length).toBe(exchanges); // refused before any exchange
    expect(upstream.requests.filter((r) => r.url === '/docs/2')).toHaveLength(0);
    expect((await call(`${proxy.url}/docs/2`, bob)).status).toBe(200);

    const list = await admin(proxy.adminUrl, 'GET');
    expect(list.status).toBe(200);
    const entries = (list.json as { revocations: Array<Record<string, unknown>> }).revocations;
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ sub: 'alice', source: 'admin', event: 'admin' });
    expect(JSON.stringify(list.json)).not.toContain(alice);

    const audit = proxy.logs.lines().find((l) => l.audit === 'revocation');
    expect(audit).toMatchObject({ source: 'admin', event: 'admin', sub: 'alice', evicted: 1 });
    expect(proxy.logs.text()).not.toContain(alice);
    expect(await metricsText(proxy.adminUrl)).toContain(
      'delegate_proxy_revocations_total{source="admin",event="admin"} 1',
    );

    // A token issued after the revocation (iat in a later second) is accepted.
    await nextSecondAfter(revokedAt);
    const fresh = await as.userToken('alice', ['documents:read']);
    expect((await call(`${proxy.url}/docs/3`, fresh)).status).toBe(200);
  });

  it('with iss: only tokens of that issuer are refused', async () => {
    const { as, proxy } = await setupRevocation(closers);
    const alice = await as.userToken('alice', ['documents:read']);
    expect((await call(`${proxy.url}/docs/1`, alice)).status).toBe(200);
    expect(await admin(proxy.adminUrl, 'POST', { sub: 'alice', iss: 'https://other-idp.test' })).toEqual({
      status: 200,
      json: { evicted: 0, closedStreams: 0 },
    });
    expect((await call(`${proxy.url}/docs/2`, alice)).status).toBe(200);
    expect(await admin(proxy.adminUrl, 'POST', { sub: 'alice', iss: as.issuer })).toEqual({
      status: 200,
      json: { evicted: 1, closedStreams: 0 },
    });
    expect((await call(`${proxy.url}/docs/3`, alice)).status).toBe(401);
  });

  it('refuses malformed bodies and other methods', async () => {
    const { proxy } = await setupRevocation(closers);
    for (const body of [{}, { sub: '' }, { sub: 42 }, { sub: 'a', extra: 1 }, { sub: 'a', iss: '' }, ['a']]) {
      const res = await admin(proxy.adminUrl, 'POST', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json).toMatchObject({ error: 'invalid_request' });
    }
    const notJson = await request(`${proxy.adminUrl}/revocations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      body: '{',
    });
    expect(notJson.statusCode).toBe(400);
    await notJson.body.dump();
    const big = await request(`${proxy.adminUrl}/revocations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify({ sub: 'x'.repeat(20_000) }),
    });
    expect(big.statusCode).toBe(413);
    await big.body.dump();
    const put = await request(`${proxy.adminUrl}/revocations`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(put.statusCode).toBe(405);
    expect(put.headers.allow).toBe('GET, POST, DELETE');
    await put.body.dump();
    const del = await request(`${proxy.adminUrl}/revocations`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      body: '{"sub": 42}',
    });
    expect(del.statusCode).toBe(400);
    await del.body.dump();
  });

  it('DELETE lifts a revocation early: old user tokens pass again; the lift is audited', async () => {
    const { as, proxy } = await setupRevocation(closers);
    const alice = await as.userToken('alice', ['documents:read']);
    expect(await admin(proxy.adminUrl, 'POST', { sub: 'alice' })).toEqual({
      status: 200,
      json: { evicted: 0, closedStreams: 0 },
    });
    expect((await call(`${proxy.url}/docs/1`, alice)).status).toBe(401);
    expect(await admin(proxy.adminUrl, 'DELETE', { sub: 'alice', iss: as.issuer })).toEqual({
      status: 200,
      json: { lifted: false },
    });
    expect(await admin(proxy.adminUrl, 'DELETE', { sub: 'alice' })).toEqual({ status: 200, json: { lifted: true } });
    expect((await call(`${proxy.url}/docs/2`, alice)).status).toBe(200);
    expect(proxy.logs.lines().find((l) => l.audit === 'revocation_lifted' && l.lifted === true)).toMatchObject({
      sub: 'alice',
    });
    expect(await admin(proxy.adminUrl, 'DELETE', { sub: 'alice' })).toEqual({ status: 200, json: { lifted: false } });
    expect(await admin(proxy.adminUrl, 'GET')).toEqual({ status: 200, json: { revocations: [] } });
  });
});
