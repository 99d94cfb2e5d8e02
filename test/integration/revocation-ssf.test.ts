import { describe, expect, it } from 'vitest';
import { useClosers } from '../helpers/closers.js';
import {
  CREDENTIAL_CHANGE,
  push,
  SESSION_REVOKED,
  TOKEN_CLAIMS_CHANGE,
  VERIFICATION,
} from '../helpers/ssf-transmitter.js';
import { call, metricsText, SSF_AUTHORIZATION, setupRevocation } from './revocation-setup.js';

const closers = useClosers();

describe('SSF push receiver (RFC 8935 on POST /ssf/events)', () => {
  it('session-revoked (iss_sub): 202 with no body, the user is refused, others are not', async () => {
    const { as, tx, proxy } = await setupRevocation(closers);
    const alice = await as.userToken('alice', ['documents:read']);
    const bob = await as.userToken('bob', ['documents:read']);
    expect((await call(`${proxy.url}/docs/1`, alice)).status).toBe(200);
    expect((await call(`${proxy.url}/docs/1`, bob)).status).toBe(200);

    const set = await tx.event(SESSION_REVOKED, { format: 'iss_sub', iss: as.issuer, sub: 'alice' });
    const res = await push(proxy.adminUrl, set, SSF_AUTHORIZATION);
    expect(res.status).toBe(202);
    expect(res.body).toBe('');

    expect((await call(`${proxy.url}/docs/2`, alice)).status).toBe(401);
    expect((await call(`${proxy.url}/docs/2`, bob)).status).toBe(200);
    const metrics = await metricsText(proxy.adminUrl);
    expect(metrics).toContain('delegate_proxy_revocations_total{source="ssf",event="session_revoked"} 1');
    expect(metrics).toContain('delegate_proxy_security_events_total{outcome="accepted"} 1');
    expect(proxy.logs.lines().find((l) => l.audit === 'revocation')).toMatchObject({
      source: 'ssf',
      event: 'session_revoked',
      sub: 'alice',
      iss: as.issuer,
      evicted: 1,
    });
  });

  it('credential-change with an email subject refuses tokens carrying that email claim; opaque maps to sub', async () => {
    const { as, tx, proxy } = await setupRevocation(closers);
    const alice = await as.issueSubjectToken({
      sub: 'u-1',
      scope: ['documents:read'],
      audience: 'agent-service',
      extraClaims: { email: 'Alice@Example.com' },
    });
    const carol = await as.userToken('carol', ['documents:read']);
    expect((await call(`${proxy.url}/docs/1`, alice)).status).toBe(200);
    const byEmail = await tx.event(CREDENTIAL_CHANGE, { format: 'email', email: 'alice@example.com' });
    expect((await push(proxy.adminUrl, byEmail, SSF_AUTHORIZATION)).status).toBe(202);
    expect((await call(`${proxy.url}/docs/2`, alice)).status).toBe(401);
    const audit = proxy.logs.lines().find((l) => l.audit === 'revocation');
    expect(audit).toMatchObject({ event: 'credential_change', evicted: 1 });
    expect(audit?.subjectHash).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(proxy.logs.text()).not.toContain('alice@example.com');

    const byOpaque = await tx.event(SESSION_REVOKED, { format: 'opaque', id: 'carol' });
    expect((await push(proxy.adminUrl, byOpaque, SSF_AUTHORIZATION)).status).toBe(202);
    expect((await call(`${proxy.url}/docs/2`, carol)).status).toBe(401);
  });

  it('token-claims-change only evicts: the user keeps access through a fresh exchange', async () => {
    const { as, tx, proxy } = await setupRevocation(closers);
    const alice = await as.userToken('alice', ['documents:read']);
    expect((await call(`${proxy.url}/docs/1`, alice)).status).toBe(200);
    expect((await call(`${proxy.url}/docs/2`, alice)).status).toBe(200);
    expect(as.exchanges).toHaveLength(1);
    const set = await tx.event(TOKEN_CLAIMS_CHANGE, { format: 'iss_sub', iss: as.issuer, sub: 'alice' });
    expect((await push(proxy.adminUrl, set, SSF_AUTHORIZATION)).status).toBe(202);
    expect((await call(`${proxy.url}/docs/3`, alice)).status).toBe(200);
    expect(as.exchanges).toHaveLength(2);
    expect(await metricsText(proxy.adminUrl)).toContain(
      'delegate_proxy_revocations_total{source="ssf",event="token_claims_change"} 1',
    );
  });

  it('unknown events and the SSF verification event are accepted (202) and change nothing', async () => {
    const { as, tx, proxy } = await setupRevocation(closers);
    const alice = await as.userToken('alice', ['documents:read']);
    expect((await call(`${proxy.url}/docs/1`, alice)).status).toBe(200);
    const unknown = await tx.event('https://example.com/event-type/something-else', { format: 'opaque', id: 'alice' });
    expect((await push(proxy.adminUrl, unknown, SSF_AUTHORIZATION)).status).toBe(202);
    const verification = await tx.sign({
      sub_id: { format: 'opaque', id: 'stream-1' },
      events: { [VERIFICATION]: { state: 'abc' } },
    });
    expect((await push(proxy.adminUrl, verification, SSF_AUTHORIZATION)).status).toBe(202);
    expect((await call(`${proxy.url}/docs/2`, alice)).status).toBe(200);
    expect(as.exchanges).toHaveLength(1);
    expect(proxy.logs.lines().some((l) => l.audit === 'revocation')).toBe(false);
    expect(proxy.logs.lines().some((l) => l.msg === 'SSF verification event received')).toBe(true);
  });

  it('refuses forged, misaddressed, replayed, stale and unauthenticated SETs as RFC 8935 says, and revokes nothing', async () => {
    const { as, tx, proxy } = await setupRevocation(closers);
    const alice = await as.userToken('alice', ['documents:read']);
    const subject = { format: 'iss_sub', iss: as.issuer, sub: 'alice' };
    const now = Math.floor(Date.now() / 1000);
    const cases: Array<[string, string, string | undefined, number, string]> = [
      [
        'forged signature',
        await tx.event(SESSION_REVOKED, subject, { forge: true }),
        SSF_AUTHORIZATION,
        400,
        'invalid_key',
      ],
      [
        'wrong aud',
        await tx.event(SESSION_REVOKED, subject, { aud: 'https://someone-else.test' }),
        SSF_AUTHORIZATION,
        400,
        'invalid_audience',
      ],
      [
        'wrong iss',
        await tx.event(SESSION_REVOKED, subject, { iss: 'https://evil.test' }),
        SSF_AUTHORIZATION,
        400,
        'invalid_issuer',
      ],
      [
        'expired iat',
        await tx.event(SESSION_REVOKED, subject, { iat: now - 3600 }),
        SSF_AUTHORIZATION,
        400,
        'invalid_request',
      ],
      [
        'iat in the future',
        await tx.event(SESSION_REVOKED, subject, { iat: now + 3600 }),
        SSF_AUTHORIZATION,
        400,
        'invalid_request',
      ],
      [
        'wrong typ',
        await tx.event(SESSION_REVOKED, subject, { typ: 'JWT' }),
        SSF_AUTHORIZATION,
        400,
        'invalid_request',
      ],
      [
        'malformed subject',
        await tx.event(SESSION_REVOKED, { format: 'iss_sub', sub: 'alice' }),
        SSF_AUTHORIZATION,
        400,
        'invalid_request',
      ],
      ['not a JWT', 'not-a-set', SSF_AUTHORIZATION, 400, 'invalid_request'],
      ['missing authorization', await tx.event(SESSION_REVOKED, subject), undefined, 401, 'authentication_failed'],
      [
        'wrong authorization',
        await tx.event(SESSION_REVOKED, subject),
        `${SSF_AUTHORIZATION}x`,
        401,
        'authentication_failed',
      ],
    ];
    const descriptions: Record<string, string> = {};
    for (const [name, set, authorization, status, err] of cases) {
      const res = await push(proxy.adminUrl, set, authorization);
      expect(res.status, name).toBe(status);
      expect(res.headers['content-type'], name).toBe('application/json');
      expect(JSON.parse(res.body), name).toMatchObject({ err, description: expect.any(String) });
      descriptions[name] = (JSON.parse(res.body) as { description: string }).description;
      if (status === 401) expect(res.headers['www-authenticate'], name).toBe('Bearer realm="delegate-proxy-ssf"');
    }
    expect(descriptions['expired iat']).toBe('the SET iat is outside the accepted window');
    expect(descriptions['iat in the future']).toBe('the SET iat is outside the accepted window');
    const wrongType = await push(
      proxy.adminUrl,
      await tx.event(SESSION_REVOKED, subject),
      SSF_AUTHORIZATION,
      'application/jwt',
    );
    expect(wrongType.status).toBe(415);
    expect((await call(`${proxy.url}/docs/1`, alice)).status).toBe(200); // nothing above revoked alice

    const set = await tx.event(SESSION_REVOKED, subject);
    expect((await push(proxy.adminUrl, set, SSF_AUTHORIZATION)).status).toBe(202);
    const replay = await push(proxy.adminUrl, set, SSF_AUTHORIZATION);
    expect(replay.status).toBe(400);
    expect(JSON.parse(replay.body)).toEqual({
      err: 'invalid_request',
      description: 'this SET (jti) was already received',
    });

    const metrics = await metricsText(proxy.adminUrl);
    expect(metrics).toContain('delegate_proxy_security_events_total{outcome="rejected"} 12');
    expect(metrics).toContain('delegate_proxy_security_events_total{outcome="accepted"} 1');
    expect(metrics).toContain('delegate_proxy_revocations_total{source="ssf",event="session_revoked"} 1');
  });

  it('finds the transmitter keys by SSF discovery when jwksUri is not configured', async () => {
    const { as, tx, proxy } = await setupRevocation(closers, { ssf: { jwksUri: undefined } });
    const alice = await as.userToken('alice', ['documents:read']);
    const set = await tx.event(SESSION_REVOKED, { format: 'iss_sub', iss: as.issuer, sub: 'alice' });
    expect((await push(proxy.adminUrl, set, SSF_AUTHORIZATION)).status).toBe(202);
    expect((await call(`${proxy.url}/docs/1`, alice)).status).toBe(401);
  });

  it('answers 503 (the transmitter retries) when the keys cannot be fetched', async () => {
    const { as, tx, proxy } = await setupRevocation(closers, { ssf: { jwksUri: 'http://127.0.0.1:9/jwks' } });
    const set = await tx.event(SESSION_REVOKED, { format: 'iss_sub', iss: as.issuer, sub: 'alice' });
    const res = await push(proxy.adminUrl, set, SSF_AUTHORIZATION);
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
  });
});
