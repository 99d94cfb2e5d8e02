import { decodeJwt } from 'jose';
import { chromium } from 'playwright-core';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { SESSION_COOKIE } from '../../src/step-up/admin-routes.js';
import { signInApprover } from '../helpers/approver-sign-in.js';
import { useClosers } from '../helpers/closers.js';
import { requireFile } from '../helpers/require-tool.js';
import { startAs } from '../helpers/start-as.js';
import type { TestProxy } from '../helpers/start-proxy.js';
import { startUpstream, type TestUpstream } from '../helpers/start-upstream.js';
import {
  type ApprovalReceiver,
  billingRoute,
  CALLBACK_SECRET,
  manualTimer,
  secretFile,
  startApprovalReceiver,
  startStepUpProxy,
} from '../helpers/step-up-harness.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

const closers = useClosers();

async function setup(): Promise<{
  proxy: TestProxy;
  upstream: TestUpstream;
  receiver: ApprovalReceiver;
  user: string;
}> {
  const as = await startAs();
  closers.push(() => as.close());
  const upstream = await startUpstream();
  closers.push(() => upstream.close());
  const receiver = await startApprovalReceiver(() => ({ status: 202 }));
  closers.push(() => receiver.close());
  const proxy = await startStepUpProxy({
    as,
    timer: manualTimer(),
    config: {
      stepUp: { approval: { webhookUrl: receiver.url, callbackSecretFile: secretFile() } },
      routes: [billingRoute(upstream.url)],
    },
  });
  closers.push(() => proxy.close());
  const user = await as.userToken('alice', ['billing:read', 'billing:write']);
  return { proxy, upstream, receiver, user };
}

function holdDelete(proxy: TestProxy, user: string, reason: string) {
  return request(`${proxy.url}/billing/invoices/77`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${user}`, 'x-step-up-reason': reason },
  }).then(async (res) => ({ status: res.statusCode, text: await res.body.text() }));
}

/** Signs in over plain HTTP like a browser form would; returns the session cookie. */
async function signIn(adminUrl: string): Promise<string> {
  const { status, setCookie, cookie } = await signInApprover(adminUrl);
  expect(status).toBe(303);
  expect(setCookie).toMatch(/HttpOnly/);
  expect(setCookie).toMatch(/SameSite=Strict/);
  return cookie;
}

/** Denies through the machine callback so the held request ends before the servers close. */
async function release(adminUrl: string, event: { id: string; bodySha256?: unknown }): Promise<void> {
  const res = await request(`${adminUrl}/step-up/${event.id}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${CALLBACK_SECRET}`, 'content-type': 'application/json' },
    body: JSON.stringify({ decision: 'denied', bodySha256: event.bodySha256 }),
  });
  await res.body.dump();
  expect(res.statusCode).toBe(200);
}

async function page(adminUrl: string, cookie?: string) {
  const res = await request(`${adminUrl}/step-up`, { headers: cookie ? { cookie } : {} });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

describe('approval page in a real browser', () => {
  it.skipIf(!requireFile(CHROMIUM, 'apt-get install chromium (.ci/run does)'))(
    'a pending request appears, and a click on Approve completes the held agent request',
    async () => {
      const { proxy, upstream, receiver, user } = await setup();
      const held = holdDelete(proxy, user, 'duplicate <b>invoice</b>');
      const event = await receiver.nextRequest();

      const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
      closers.push(() => browser.close());
      const tab = await browser.newPage();
      const foreign: string[] = [];
      const problems: string[] = [];
      tab.on('request', (r) => {
        if (!r.url().startsWith(proxy.adminUrl)) foreign.push(r.url());
      });
      tab.on('console', (m) => {
        if (m.type() === 'error') problems.push(m.text());
      });

      tab.setDefaultTimeout(15_000);
      await tab.goto(`${proxy.adminUrl}/step-up`);
      await tab.getByLabel(/Your name/).fill('frank');
      await tab.getByLabel(/Approval secret/).fill(CALLBACK_SECRET);
      await tab.getByRole('button', { name: 'Sign in' }).click();

      const card = tab.locator(`[data-approval-id="${event.id}"]`);
      await card.waitFor();
      const text = (await card.textContent()) ?? '';
      expect(text).toContain('/invoices/77');
      expect(text).toContain('billing:write');
      expect(text).toContain('alice');
      // The agent's text is shown as text, never as markup.
      expect(text).toContain('duplicate <b>invoice</b>');

      await card.getByRole('button', { name: 'Approve' }).click();
      await tab.getByRole('status').waitFor();
      expect((await tab.getByRole('status').textContent()) ?? '').toMatch(/Approved/);
      expect(await tab.locator('#none').count()).toBe(1);

      const res = await held;
      expect(res.status).toBe(200);
      const auth = upstream.requests[0]!.headers.authorization ?? '';
      expect(decodeJwt(auth.slice(7)).scope).toBe('billing:read billing:write');
      expect(proxy.logs.lines().find((l) => l.audit === 'step_up')).toMatchObject({
        decision: 'approved',
        approver: 'frank',
        via: 'page',
      });
      expect(foreign).toEqual([]);
      expect(problems).toEqual([]);
    },
    60_000,
  );
});

describe('approval page protection', () => {
  it('without a session only the sign-in form is shown, never pending requests', async () => {
    const { proxy, receiver, user } = await setup();
    const held = holdDelete(proxy, user, 'x');
    const event = await receiver.nextRequest();
    const p = await page(proxy.adminUrl);
    expect(p.status).toBe(200);
    expect(p.text).toContain('action="/step-up/login"');
    expect(p.text).not.toContain('/invoices/77');
    const forged = await page(proxy.adminUrl, `${SESSION_COOKIE}=eyJhIjoieCIsInQiOjF9.forged`);
    expect(forged.text).not.toContain('/invoices/77');
    await release(proxy.adminUrl, event);
    expect((await held).status).toBe(403);
  });

  it('a wrong secret does not sign in', async () => {
    const { proxy } = await setup();
    const res = await request(`${proxy.adminUrl}/step-up/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ approver: 'mallory', secret: 'guess' }).toString(),
    });
    expect(res.statusCode).toBe(401);
    expect(res.headers['set-cookie']).toBeUndefined();
    await res.body.dump();
  });

  it('serves the page with a strict CSP, no framing and no caching', async () => {
    const { proxy } = await setup();
    const cookie = await signIn(proxy.adminUrl);
    const p = await page(proxy.adminUrl, cookie);
    expect(p.status).toBe(200);
    expect(p.headers['content-security-policy']).toMatch(/default-src 'none'/);
    expect(p.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    expect(p.headers['x-frame-options']).toBe('DENY');
    expect(p.headers['cache-control']).toBe('no-store');
    expect(p.text).not.toMatch(/<script|https?:\/\//);
  });

  it('a decision with the session cookie but without the CSRF token is refused', async () => {
    const { proxy, receiver, user } = await setup();
    const held = holdDelete(proxy, user, 'x');
    const event = await receiver.nextRequest();
    const cookie = await signIn(proxy.adminUrl);
    const res = await request(`${proxy.adminUrl}/step-up/${event.id}`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ decision: 'approved', bodySha256: String(event.bodySha256) }).toString(),
    });
    expect(res.statusCode).toBe(403);
    await res.body.dump();
    expect((await page(proxy.adminUrl, cookie)).text).toContain(event.id);
    await release(proxy.adminUrl, event);
    expect((await held).status).toBe(403);
  });

  it('a cross-origin form post is refused even with a valid CSRF token', async () => {
    const { proxy, receiver, user } = await setup();
    const held = holdDelete(proxy, user, 'x');
    const event = await receiver.nextRequest();
    const cookie = await signIn(proxy.adminUrl);
    const html = (await page(proxy.adminUrl, cookie)).text;
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)![1]!;
    const res = await request(`${proxy.adminUrl}/step-up/${event.id}`, {
      method: 'POST',
      headers: { cookie, origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ decision: 'approved', bodySha256: String(event.bodySha256), csrf }).toString(),
    });
    expect(res.statusCode).toBe(403);
    await res.body.dump();
    expect((await page(proxy.adminUrl, cookie)).text).toContain(event.id);
    await release(proxy.adminUrl, event);
    expect((await held).status).toBe(403);
  });

  it('robustness: a ?result= naming an Object.prototype property (constructor, __proto__) still renders the page', async () => {
    const { proxy } = await setup();
    const cookie = await signIn(proxy.adminUrl);
    for (const key of ['constructor', '__proto__', 'toString']) {
      const res = await request(`${proxy.adminUrl}/step-up?result=${key}`, { headers: { cookie } });
      const text = await res.body.text();
      expect(res.statusCode, key).toBe(200);
      expect(text).toContain('Signed in as');
      expect(text).not.toContain('role="status"');
    }
  });
});
