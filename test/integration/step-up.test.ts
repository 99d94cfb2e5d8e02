import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { decodeJwt } from 'jose';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { SIGNATURE_HEADER, signBody, TIMESTAMP_HEADER } from '../../src/step-up/signature.js';
import { useClosers } from '../helpers/closers.js';
import { startAs, type TestAuthorizationServer } from '../helpers/start-as.js';
import type { TestProxy } from '../helpers/start-proxy.js';
import { startUpstream, type TestUpstream } from '../helpers/start-upstream.js';
import {
  type ApprovalReceiver,
  billingRoute,
  CALLBACK_SECRET,
  manualTimer,
  startApprovalReceiver,
  startStepUpProxy,
  webhookApproval,
} from '../helpers/step-up-harness.js';

const closers = useClosers();

const USER_GRANTS = ['billing:read', 'billing:write', 'billing:admin'];

interface Setup {
  as: TestAuthorizationServer;
  upstream: TestUpstream;
  receiver: ApprovalReceiver;
  proxy: TestProxy;
  timer: ReturnType<typeof manualTimer>;
  user: string;
}

async function setup(
  options: {
    answer?: Parameters<typeof startApprovalReceiver>[0];
    upstream?: Parameters<typeof startUpstream>[0];
    stepUp?: Record<string, unknown>;
  } = {},
): Promise<Setup> {
  const as = await startAs();
  closers.push(() => as.close());
  const upstream = await startUpstream(options.upstream);
  closers.push(() => upstream.close());
  const receiver = await startApprovalReceiver(options.answer);
  closers.push(() => receiver.close());
  const timer = manualTimer();
  const proxy = await startStepUpProxy({
    as,
    timer,
    config: {
      stepUp: { approval: webhookApproval(receiver.url) },
      routes: [
        billingRoute(
          upstream.url,
          options.stepUp ?? {
            scopes: ['billing:write'],
            rules: [{ method: 'DELETE', pathPrefix: '/invoices' }],
            onChallenge: true,
          },
        ),
      ],
    },
  });
  closers.push(() => proxy.close());
  const user = await as.userToken('alice', USER_GRANTS);
  return { as, upstream, receiver, proxy, timer, user };
}

async function call(
  url: string,
  user: string,
  init: { method?: string; body?: string; headers?: Record<string, string>; signal?: AbortSignal } = {},
) {
  const res = await request(url, {
    method: (init.method ?? 'GET') as 'GET',
    headers: { authorization: `Bearer ${user}`, ...init.headers },
    ...(init.body === undefined ? {} : { body: init.body }),
    ...(init.signal ? { signal: init.signal } : {}),
  });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    headers: res.headers,
    text,
    json: () => JSON.parse(text) as Record<string, unknown>,
  };
}

function scopeSeen(upstream: TestUpstream, index: number): string {
  const auth = upstream.requests[index]?.headers.authorization ?? '';
  return String(decodeJwt(auth.replace(/^Bearer /, '')).scope);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

async function metric(proxy: TestProxy, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = proxy.registry.getSingleMetric(`delegate_proxy_${name}`);
  const values = (await m!.get()).values;
  const hit = values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return hit?.value ?? 0;
}

function auditLines(proxy: TestProxy): Array<Record<string, unknown>> {
  return proxy.logs.lines().filter((l) => l.audit === 'step_up');
}

async function decide(
  adminUrl: string,
  id: string,
  body: Record<string, unknown>,
  auth: { kind: 'hmac'; secret?: string; timestamp?: number } | { kind: 'bearer'; token: string } = { kind: 'hmac' },
) {
  const text = JSON.stringify(body);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (auth.kind === 'hmac') {
    const ts = auth.timestamp ?? Math.floor(Date.now() / 1000);
    headers[TIMESTAMP_HEADER] = String(ts);
    headers[SIGNATURE_HEADER] = signBody(auth.secret ?? CALLBACK_SECRET, ts, text);
  } else {
    headers.authorization = `Bearer ${auth.token}`;
  }
  const res = await request(`${adminUrl}/step-up/${id}`, { method: 'POST', headers, body: text });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
}

describe('step-up rules: a person decides before the elevated scope is ever requested', () => {
  it('approved by the webhook: the held call is forwarded with the elevated scope, the next call is not', async () => {
    const { upstream, receiver, proxy, user, as } = await setup({
      answer: () => ({ status: 200, body: { decision: 'approved', approver: 'bob@example.com' } }),
    });
    const body = '{"invoice":42}';
    const res = await call(`${proxy.url}/billing/invoices/42?hard=1`, user, {
      method: 'DELETE',
      body,
      headers: {
        'content-type': 'application/json',
        'x-step-up-reason': 'customer asked to void the duplicate invoice',
      },
    });
    expect(res.status).toBe(200);
    expect(upstream.requests).toHaveLength(1);
    expect(scopeSeen(upstream, 0)).toBe('billing:read billing:write');
    expect(upstream.requests[0]!.body).toBe(body);

    // The approval request carried what a person needs to decide.
    const event = receiver.events[0]!;
    expect(event).toMatchObject({
      type: 'step_up.requested',
      route: 'billing',
      scopes: ['billing:write'],
      sub: 'alice',
      actor: null,
      method: 'DELETE',
      path: '/invoices/42?hard=1',
      mcpTools: [],
      bodySha256: sha256(body),
      reason: 'customer asked to void the duplicate invoice',
      trigger: 'rule',
      decisionPath: `/step-up/${event.id}`,
      decisionUrl: `http://10.0.0.7:9090/step-up/${event.id}`,
    });
    const expires = Date.parse(String(event.expiresAt)) - Date.parse(String(event.createdAt));
    expect(expires).toBe(120_000);
    // Signed with the callback secret, so the receiver can tell it came from this proxy.
    const ts = Number(receiver.headers[0]![TIMESTAMP_HEADER]);
    expect(receiver.headers[0]![SIGNATURE_HEADER]).toBe(signBody(CALLBACK_SECRET, ts, JSON.stringify(event)));

    // The next call (no rule) gets the baseline token: the elevated one was never cached.
    const next = await call(`${proxy.url}/billing/invoices/42`, user);
    expect(next.status).toBe(200);
    expect(scopeSeen(upstream, 1)).toBe('billing:read');
    const scopesAsked = as.exchanges.filter((e) => e.outcome === 'issued').map((e) => e.params.scope);
    expect(scopesAsked).toEqual(['billing:read', 'billing:read billing:write']);

    // One audit event with everything, and the metrics.
    const audit = auditLines(proxy);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      approvalId: event.id,
      decision: 'approved',
      approver: 'bob@example.com',
      via: 'webhook',
      scopes: ['billing:write'],
      sub: 'alice',
      route: 'billing',
      bodySha256: sha256(body),
      trigger: 'rule',
    });
    expect(typeof audit[0]!.latencyMs).toBe('number');
    expect(await metric(proxy, 'step_up_total', { route: 'billing', outcome: 'approved' })).toBe(1);
    expect(await metric(proxy, 'step_up_pending')).toBe(0);
    expect(proxy.logs.text()).not.toContain(user);
  });

  it('an approval covers one call only: the same DELETE again asks again', async () => {
    const { upstream, receiver, proxy, user } = await setup({
      answer: () => ({ status: 200, body: { decision: 'approved', approver: 'bob' } }),
    });
    expect((await call(`${proxy.url}/billing/invoices/1`, user, { method: 'DELETE' })).status).toBe(200);
    expect((await call(`${proxy.url}/billing/invoices/1`, user, { method: 'DELETE' })).status).toBe(200);
    const requested = receiver.events.filter((e) => e.type === 'step_up.requested');
    expect(requested).toHaveLength(2);
    expect(requested[0]!.id).not.toBe(requested[1]!.id);
    expect(upstream.requests.map((_, i) => scopeSeen(upstream, i))).toEqual([
      'billing:read billing:write',
      'billing:read billing:write',
    ]);
  });

  it('denied: 403 insufficient_scope saying a person declined, and nothing reaches the upstream', async () => {
    const { upstream, proxy, user, as } = await setup({
      answer: () => ({ status: 200, body: { decision: 'denied', approver: 'carol' } }),
    });
    const res = await call(`${proxy.url}/billing/invoices/7`, user, { method: 'DELETE' });
    expect(res.status).toBe(403);
    expect(res.json().error).toBe('insufficient_scope');
    expect(String(res.json().error_description)).toMatch(/a person declined/);
    expect(res.headers['www-authenticate']).toBe(
      'Bearer realm="delegate-proxy", error="insufficient_scope", scope="billing:read billing:write"',
    );
    expect(upstream.requests).toHaveLength(0);
    expect(as.exchanges.map((e) => e.params.scope)).toEqual(['billing:read']);
    expect(auditLines(proxy)[0]).toMatchObject({ decision: 'denied', approver: 'carol' });
    expect(await metric(proxy, 'step_up_total', { route: 'billing', outcome: 'denied' })).toBe(1);
  });

  it('no decision in time: the agent waits, then gets 403 and the approval is withdrawn', async () => {
    const { upstream, receiver, proxy, user, timer } = await setup({ answer: () => 'hang' });
    let settled = false;
    const pending = call(`${proxy.url}/billing/invoices/9`, user, { method: 'DELETE' }).finally(() => {
      settled = true;
    });
    const event = await receiver.nextRequest();
    expect(await metric(proxy, 'step_up_pending')).toBe(1);
    expect(settled).toBe(false);

    timer.fireAll();
    const res = await pending;
    expect(res.status).toBe(403);
    expect(res.json().error).toBe('insufficient_scope');
    expect(String(res.json().error_description)).toMatch(/no approval decision arrived within 120 s/);
    expect(upstream.requests).toHaveLength(0);
    expect(await metric(proxy, 'step_up_pending')).toBe(0);
    expect(await metric(proxy, 'step_up_total', { route: 'billing', outcome: 'timeout' })).toBe(1);
    // Withdrawn: the webhook hears so, and a late decision is refused.
    await expect
      .poll(() => receiver.events.find((e) => e.type === 'step_up.withdrawn'))
      .toMatchObject({ id: event.id, reason: 'timeout' });
    const late = await decide(proxy.adminUrl, event.id, { decision: 'approved', bodySha256: event.bodySha256 });
    expect(late.status).toBe(409);
    expect(late.json.error).toBe('already_decided');
  });

  it('a client that disconnects while waiting withdraws its approval request', async () => {
    const { receiver, proxy, user } = await setup();
    const abort = new AbortController();
    const pending = call(`${proxy.url}/billing/invoices/3`, user, { method: 'DELETE', signal: abort.signal }).catch(
      () => 'aborted',
    );
    const event = await receiver.nextRequest();
    abort.abort();
    expect(await pending).toBe('aborted');
    await expect
      .poll(() => receiver.events.find((e) => e.type === 'step_up.withdrawn'))
      .toMatchObject({ id: event.id, reason: 'client_disconnected' });
    expect(await metric(proxy, 'step_up_pending')).toBe(0);
    const late = await decide(proxy.adminUrl, event.id, { decision: 'approved', bodySha256: event.bodySha256 });
    expect(late.status).toBe(409);
    expect(auditLines(proxy)[0]).toMatchObject({ decision: 'withdrawn', withdrawnBecause: 'client_disconnected' });
  });

  it('an unreachable approval webhook answers 503 without asking anyone', async () => {
    const { upstream, receiver, proxy, user } = await setup({ answer: () => ({ status: 500 }) });
    const res = await call(`${proxy.url}/billing/invoices/3`, user, { method: 'DELETE' });
    expect(res.status).toBe(503);
    expect(res.json().error).toBe('temporarily_unavailable');
    expect(upstream.requests).toHaveLength(0);
    expect(receiver.events).toHaveLength(1);
    expect(await metric(proxy, 'step_up_total', { route: 'billing', outcome: 'error' })).toBe(1);
  });

  it('requests no rule matches pass without asking (other method, other path, prefix without segment boundary)', async () => {
    const { upstream, receiver, proxy, user } = await setup();
    expect((await call(`${proxy.url}/billing/invoices/1`, user)).status).toBe(200);
    expect((await call(`${proxy.url}/billing/customers/1`, user, { method: 'DELETE' })).status).toBe(200);
    expect((await call(`${proxy.url}/billing/invoices-archive/1`, user, { method: 'DELETE' })).status).toBe(200);
    expect(receiver.events).toHaveLength(0);
    expect(upstream.requests).toHaveLength(3);
  });

  it('security: a POST the upstream reads as DELETE (method-override header, _method) still asks', async () => {
    const { upstream, receiver, proxy, user } = await setup({
      answer: () => ({ status: 200, body: { decision: 'denied' } }),
    });
    const variants = [
      { path: '/billing/invoices/1', headers: { 'x-http-method-override': 'DELETE' } },
      { path: '/billing/invoices/1?_method=delete', headers: {} },
      {
        path: '/billing/invoices/1',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'note=x&_method=DELETE',
      },
    ];
    for (const v of variants) {
      const res = await call(`${proxy.url}${v.path}`, user, {
        method: 'POST',
        headers: v.headers,
        ...(v.body === undefined ? {} : { body: v.body }),
      });
      expect(res.status, JSON.stringify(v)).toBe(403);
    }
    expect(receiver.events.filter((e) => e.type === 'step_up.requested')).toHaveLength(3);
    expect(upstream.requests).toHaveLength(0);
    // A plain POST (and a form POST without _method) is not held, and its body still arrives intact.
    const form = 'note=x';
    const plain = await call(`${proxy.url}/billing/invoices/1`, user, {
      method: 'POST',
      body: form,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(plain.status).toBe(200);
    expect(upstream.requests[0]!.body).toBe(form);
  });

  it('path variants an upstream may read as the ruled path still ask (case, encoding, //, ;params)', async () => {
    const { receiver, proxy, user } = await setup({ answer: () => ({ status: 200, body: { decision: 'denied' } }) });
    for (const path of [
      '/billing/Invoices/1',
      '/billing/%69nvoices/1',
      '/billing//invoices/1',
      '/billing/invoices;v=1/1',
    ]) {
      const res = await call(`${proxy.url}${path}`, user, { method: 'DELETE' });
      expect(res.status, path).toBe(403);
    }
    expect(receiver.events).toHaveLength(4);
  });
});

describe('path spellings', () => {
  const denyAll = () => ({ status: 200, body: { decision: 'denied' } });

  it('refuses encoded control characters in the request target with 400 invalid_request, on every route', async () => {
    const { upstream, receiver, proxy, user } = await setup({ answer: denyAll });
    for (const path of [
      '/billing/invoices%00/42',
      '/billing/invoices%0a/42',
      '/billing/invoices%1F/42',
      '/billing/invoices%7f/42',
      '/billing/customers/1?q=%00',
    ]) {
      const res = await call(`${proxy.url}${path}`, user, { method: 'DELETE' });
      expect(res.status, path).toBe(400);
      expect(res.json().error, path).toBe('invalid_request');
      // A GET on a path no rule covers is refused the same way.
      const get = await call(`${proxy.url}${path.replace('invoices', 'reports')}`, user);
      expect(get.status, path).toBe(400);
    }
    expect(receiver.events).toHaveLength(0);
    expect(upstream.requests).toHaveLength(0);
  });

  it('holds spellings an upstream may read as the ruled path: trimmed whitespace, an extension, both', async () => {
    const { upstream, receiver, proxy, user } = await setup({ answer: denyAll });
    const paths = [
      '/billing/invoices%20/42',
      '/billing/%20invoices/42',
      '/billing/invoices%20%20/42',
      '/billing/invoices.json',
      '/billing/invoices.json/42',
      '/billing/INVOICES.JSON',
      '/billing/invoices%2Exml/42',
      '/billing/invoices.json%20/42',
      '/billing/%49nvoices%20.json;x=1/42',
    ];
    for (const path of paths) {
      const res = await call(`${proxy.url}${path}`, user, { method: 'DELETE' });
      expect(res.status, path).toBe(403);
    }
    expect(receiver.events.filter((e) => e.type === 'step_up.requested')).toHaveLength(paths.length);
    expect(upstream.requests).toHaveLength(0);
    // Other names still pass without asking.
    expect((await call(`${proxy.url}/billing/invoices-archive/1`, user, { method: 'DELETE' })).status).toBe(200);
    expect((await call(`${proxy.url}/billing/invoicesjson/1`, user, { method: 'DELETE' })).status).toBe(200);
    expect(upstream.requests).toHaveLength(2);
  });
});

describe('decisions through the admin listener callback', () => {
  async function held(s: Setup, body = '{"a":1}') {
    const pending = call(`${s.proxy.url}/billing/invoices/5`, s.user, {
      method: 'DELETE',
      body,
      headers: { 'content-type': 'application/json' },
    });
    const event = await s.receiver.nextRequest();
    return { pending, event };
  }

  it('a signed callback approves the held request', async () => {
    const s = await setup();
    const { pending, event } = await held(s);
    const cb = await decide(s.proxy.adminUrl, event.id, {
      decision: 'approved',
      approver: 'dave',
      bodySha256: event.bodySha256,
    });
    expect(cb).toEqual({ status: 200, json: { id: event.id, status: 'decided', decision: 'approved' } });
    const res = await pending;
    expect(res.status).toBe(200);
    expect(scopeSeen(s.upstream, 0)).toBe('billing:read billing:write');
    expect(auditLines(s.proxy)[0]).toMatchObject({ decision: 'approved', approver: 'dave', via: 'callback' });
    await expect
      .poll(() => s.receiver.events.find((e) => e.type === 'step_up.decided'))
      .toMatchObject({ id: event.id, decision: 'approved', via: 'callback' });
  });

  it('the bearer secret also authenticates a callback', async () => {
    const s = await setup();
    const { pending, event } = await held(s);
    const cb = await decide(
      s.proxy.adminUrl,
      event.id,
      { decision: 'denied', bodySha256: event.bodySha256 },
      { kind: 'bearer', token: CALLBACK_SECRET },
    );
    expect(cb.status).toBe(200);
    expect((await pending).status).toBe(403);
  });

  it('refuses a wrong signature (and a wrong bearer secret); the request stays pending', async () => {
    const s = await setup();
    const { pending, event } = await held(s);
    const forged = await decide(
      s.proxy.adminUrl,
      event.id,
      { decision: 'approved', bodySha256: event.bodySha256 },
      { kind: 'hmac', secret: 'not-the-secret-not-the-secret-not-the-secret' },
    );
    expect(forged.status).toBe(401);
    expect(forged.json.error).toBe('invalid_token');
    const bearer = await decide(
      s.proxy.adminUrl,
      event.id,
      { decision: 'approved', bodySha256: event.bodySha256 },
      { kind: 'bearer', token: `${CALLBACK_SECRET}x` },
    );
    expect(bearer.status).toBe(401);
    expect(await metric(s.proxy, 'step_up_pending')).toBe(1);
    expect(s.upstream.requests).toHaveLength(0);
    await decide(s.proxy.adminUrl, event.id, { decision: 'denied', bodySha256: event.bodySha256 });
    expect((await pending).status).toBe(403);
  });

  it('refuses a signature with a stale timestamp (replay window)', async () => {
    const s = await setup();
    const { pending, event } = await held(s);
    const old = Math.floor(Date.now() / 1000) - 3600;
    const stale = await decide(
      s.proxy.adminUrl,
      event.id,
      { decision: 'approved', bodySha256: event.bodySha256 },
      { kind: 'hmac', timestamp: old },
    );
    expect(stale.status).toBe(401);
    expect(String(stale.json.error_description)).toMatch(/stale/);
    await decide(s.proxy.adminUrl, event.id, { decision: 'denied', bodySha256: event.bodySha256 });
    expect((await pending).status).toBe(403);
  });

  it('refuses a replayed id: approval ids are single-use', async () => {
    const s = await setup();
    const { pending, event } = await held(s);
    const first = await decide(s.proxy.adminUrl, event.id, { decision: 'approved', bodySha256: event.bodySha256 });
    expect(first.status).toBe(200);
    expect((await pending).status).toBe(200);
    const replay = await decide(s.proxy.adminUrl, event.id, { decision: 'approved', bodySha256: event.bodySha256 });
    expect(replay.status).toBe(409);
    expect(replay.json.error).toBe('already_decided');
    // The replay unlocked nothing: one forwarded call, one elevated exchange.
    expect(s.upstream.requests).toHaveLength(1);
    expect(s.as.exchanges.filter((e) => e.params.scope?.includes('billing:write'))).toHaveLength(1);
  });

  it('refuses an id bound to another body digest; the request stays pending', async () => {
    const s = await setup();
    const { pending, event } = await held(s, '{"amount":10}');
    const other = await decide(s.proxy.adminUrl, event.id, {
      decision: 'approved',
      bodySha256: sha256('{"amount":10000}'),
    });
    expect(other.status).toBe(409);
    expect(other.json.error).toBe('digest_mismatch');
    expect(await metric(s.proxy, 'step_up_pending')).toBe(1);
    await decide(s.proxy.adminUrl, event.id, { decision: 'denied', bodySha256: event.bodySha256 });
    expect((await pending).status).toBe(403);
    expect(s.upstream.requests).toHaveLength(0);
  });

  it('security: a signed callback for one id cannot be replayed to another pending id with the same body digest', async () => {
    const s = await setup();
    // Two DELETEs without a body: both approvals carry the digest of the empty body.
    const first = call(`${s.proxy.url}/billing/invoices/1`, s.user, { method: 'DELETE' });
    const a = await s.receiver.nextRequest();
    const second = call(`${s.proxy.url}/billing/invoices/2`, s.user, { method: 'DELETE' });
    const b = await s.receiver.nextRequest();
    expect(a.bodySha256).toBe(b.bodySha256);

    const ts = Math.floor(Date.now() / 1000);
    const body = { decision: 'approved', approver: 'dave', bodySha256: a.bodySha256 };
    expect((await decide(s.proxy.adminUrl, a.id, body, { kind: 'hmac', timestamp: ts })).status).toBe(200);
    expect((await first).status).toBe(200);
    // The very same signed message (same timestamp, same bytes) sent to the other id.
    const replay = await decide(s.proxy.adminUrl, b.id, body, { kind: 'hmac', timestamp: ts });
    expect(replay.status).toBe(401);
    expect(String(replay.json.error_description)).toMatch(/replayed/);
    expect(await metric(s.proxy, 'step_up_pending')).toBe(1);
    expect(s.upstream.requests).toHaveLength(1);
    // The same message to its own id is still the single-use answer.
    expect((await decide(s.proxy.adminUrl, a.id, body, { kind: 'hmac', timestamp: ts })).json.error).toBe(
      'already_decided',
    );
    // An "id" in the signed body binds it explicitly; naming another id is refused.
    const wrongId = await decide(s.proxy.adminUrl, b.id, { ...body, id: a.id }, { kind: 'hmac', timestamp: ts });
    expect(wrongId.status).toBe(400);
    const bound = await decide(
      s.proxy.adminUrl,
      b.id,
      { decision: 'denied', bodySha256: b.bodySha256, id: b.id },
      { kind: 'hmac', timestamp: ts },
    );
    expect(bound.status).toBe(200);
    expect((await second).status).toBe(403);
  });

  it('an unknown id is 404', async () => {
    const s = await setup();
    const res = await decide(s.proxy.adminUrl, '00000000-0000-4000-8000-000000000000', {
      decision: 'approved',
      bodySha256: sha256(''),
    });
    expect(res.status).toBe(404);
  });
});

describe('onChallenge: the upstream asks for more scope', () => {
  /** 403 with an RFC 6750 challenge until the token carries `needed`. */
  function demanding(needed: string) {
    return (req: IncomingMessage, res: ServerResponse) => {
      const scope = String(decodeJwt((req.headers.authorization ?? '').slice(7)).scope ?? '');
      if (scope.split(' ').includes(needed)) {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"paid":true}');
        return;
      }
      res.writeHead(403, {
        'content-type': 'application/json',
        'www-authenticate': `Bearer realm="billing", error="insufficient_scope", scope="${needed}", error_description="needs ${needed}"`,
      });
      res.end('{"upstream":"forbidden"}');
    };
  }

  it('an allow-listed scope is asked for, then the request is retried once with a one-call token', async () => {
    const s = await setup({
      upstream: demanding('billing:write'),
      answer: () => ({ status: 200, body: { decision: 'approved', approver: 'erin' } }),
      stepUp: { scopes: ['billing:write'], onChallenge: true },
    });
    const body = '{"pay":"inv-1"}';
    const res = await call(`${s.proxy.url}/billing/payments`, s.user, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(200);
    expect(res.text).toBe('{"paid":true}');
    expect(s.upstream.requests).toHaveLength(2);
    expect(scopeSeen(s.upstream, 0)).toBe('billing:read');
    expect(scopeSeen(s.upstream, 1)).toBe('billing:read billing:write');
    expect(s.upstream.requests[1]!.body).toBe(body);
    expect(s.receiver.events[0]).toMatchObject({
      trigger: 'challenge',
      scopes: ['billing:write'],
      method: 'POST',
      path: '/payments',
      bodySha256: sha256(body),
    });
    // Not cached: the next call starts from the baseline again.
    await call(`${s.proxy.url}/billing/payments`, s.user, { method: 'POST', body });
    expect(scopeSeen(s.upstream, 2)).toBe('billing:read');
  });

  it('denied during the retry plan: the agent gets the proxy’s 403 insufficient_scope', async () => {
    const s = await setup({
      upstream: demanding('billing:write'),
      answer: () => ({ status: 200, body: { decision: 'denied' } }),
      stepUp: { scopes: ['billing:write'], onChallenge: true },
    });
    const res = await call(`${s.proxy.url}/billing/payments`, s.user, { method: 'POST', body: '{}' });
    expect(res.status).toBe(403);
    expect(res.json()).toMatchObject({ error: 'insufficient_scope' });
    expect(String(res.json().error_description)).toMatch(/a person declined/);
    expect(s.upstream.requests).toHaveLength(1);
  });

  it('a challenge for a scope not on the allow-list is passed through untouched and nothing is asked', async () => {
    const s = await setup({
      upstream: demanding('billing:admin'),
      stepUp: { scopes: ['billing:write'], onChallenge: true },
    });
    const res = await call(`${s.proxy.url}/billing/payments`, s.user, { method: 'POST', body: '{}' });
    expect(res.status).toBe(403);
    expect(res.text).toBe('{"upstream":"forbidden"}');
    expect(res.headers['www-authenticate']).toBe(
      'Bearer realm="billing", error="insufficient_scope", scope="billing:admin", error_description="needs billing:admin"',
    );
    expect(s.receiver.events).toHaveLength(0);
    expect(s.upstream.requests).toHaveLength(1);
    expect(s.as.exchanges.map((e) => e.params.scope)).toEqual(['billing:read']);
  });

  it('a challenge naming an allowed and a disallowed scope is passed through', async () => {
    const s = await setup({
      upstream: demanding('billing:write billing:admin'),
      stepUp: { scopes: ['billing:write'], onChallenge: true },
    });
    const res = await call(`${s.proxy.url}/billing/payments`, s.user);
    expect(res.status).toBe(403);
    expect(res.text).toBe('{"upstream":"forbidden"}');
    expect(s.receiver.events).toHaveLength(0);
  });

  it('without onChallenge the upstream’s 403 passes through', async () => {
    const s = await setup({
      upstream: demanding('billing:write'),
      stepUp: { scopes: ['billing:write'], rules: [{ pathPrefix: '/never' }], onChallenge: false },
    });
    const res = await call(`${s.proxy.url}/billing/payments`, s.user);
    expect(res.status).toBe(403);
    expect(res.text).toBe('{"upstream":"forbidden"}');
    expect(s.receiver.events).toHaveLength(0);
  });
});

describe('MCP tool rules (with the MCP policy step)', () => {
  async function mcpSetup(decision: 'approved' | 'denied') {
    const as = await startAs();
    closers.push(() => as.close());
    const upstream = await startUpstream();
    closers.push(() => upstream.close());
    const receiver = await startApprovalReceiver(() => ({ status: 200, body: { decision, approver: 'gina' } }));
    closers.push(() => receiver.close());
    const proxy = await startStepUpProxy({
      as,
      timer: manualTimer(),
      config: {
        stepUp: { approval: { webhookUrl: receiver.url } },
        routes: [
          {
            name: 'tools',
            match: { pathPrefix: '/mcp' },
            upstream: upstream.url,
            scopes: ['mcp:tools:read', 'mcp:tools:write'],
            mcp: {},
            stepUp: { scopes: ['payments:send'], rules: [{ tool: 'transfer_funds' }] },
          },
        ],
      },
    });
    closers.push(() => proxy.close());
    const user = await as.userToken('alice', ['mcp:tools:read', 'mcp:tools:write', 'payments:send']);
    return { upstream, receiver, proxy, user };
  }

  const toolCall = (name: string) =>
    JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name, arguments: { amount: 5 } } });
  const mcpHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

  it('a tools/call of a ruled tool is approved, then forwarded with the elevated scope', async () => {
    const { upstream, receiver, proxy, user } = await mcpSetup('approved');
    const body = toolCall('transfer_funds');
    const res = await call(`${proxy.url}/mcp`, user, { method: 'POST', body, headers: mcpHeaders });
    expect(res.status).toBe(200);
    expect(receiver.events[0]).toMatchObject({
      mcpTools: ['transfer_funds'],
      scopes: ['payments:send'],
      bodySha256: sha256(body),
      sub: 'alice',
    });
    expect(scopeSeen(upstream, 0)).toBe('mcp:tools:write payments:send');
    expect(upstream.requests[0]!.body).toBe(body);
  });

  it('denied: the MCP client gets a JSON-RPC error for its request id; other tools are not held', async () => {
    const { upstream, receiver, proxy, user } = await mcpSetup('denied');
    const res = await call(`${proxy.url}/mcp`, user, {
      method: 'POST',
      body: toolCall('transfer_funds'),
      headers: mcpHeaders,
    });
    expect(res.status).toBe(403);
    expect(res.json()).toMatchObject({
      jsonrpc: '2.0',
      id: 7,
      error: { code: -32003, data: { error: 'insufficient_scope', reason: 'step_up_denied' } },
    });
    expect(String((res.json().error as { message: string }).message)).toMatch(/a person declined/);
    expect(upstream.requests).toHaveLength(0);

    const other = await call(`${proxy.url}/mcp`, user, {
      method: 'POST',
      body: toolCall('search'),
      headers: mcpHeaders,
    });
    expect(other.status).toBe(200);
    expect(receiver.events.filter((e) => e.type === 'step_up.requested')).toHaveLength(1);
    expect(scopeSeen(upstream, 0)).toBe('mcp:tools:write');
  });
});
