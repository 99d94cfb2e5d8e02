import { chromium } from 'playwright-core';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signInApprover } from '../helpers/approver-sign-in.js';
import type { ProxyProcess } from '../helpers/proxy-process.js';
import { requireFile } from '../helpers/require-tool.js';
import {
  type ApprovalReceiver,
  billingRoute,
  CALLBACK_SECRET,
  secretFile,
  startApprovalReceiver,
} from '../helpers/step-up-harness.js';
import { type FleetSetup, REDIS_SERVER, setupFleet, within } from './fleet-setup.js';

const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = requireFile(CHROMIUM, '.ci/run installs the Debian package chromium');

async function page(adminUrl: string, cookie: string): Promise<string> {
  const res = await request(`${adminUrl}/step-up`, { headers: { cookie } });
  return res.body.text();
}

async function callback(
  adminUrl: string,
  id: string,
  bodySha256: unknown,
  decision = 'approved',
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await request(`${adminUrl}/step-up/${id}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${CALLBACK_SECRET}`, 'content-type': 'application/json' },
    body: JSON.stringify({ decision, bodySha256, approver: 'bot' }),
  });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
}

// docs/fleet.md "Approvals": one inbox for every pod.
describe.skipIf(REDIS_SERVER === undefined)('fleet: one approval inbox', () => {
  let f: FleetSetup;
  let receiver: ApprovalReceiver;
  let a: ProxyProcess;
  let b: ProxyProcess;
  let user: string;

  const hold = (p: ProxyProcess, n: number) =>
    request(`${p.url}/billing/invoices/${n}`, { method: 'DELETE', headers: { authorization: `Bearer ${user}` } }).then(
      async (res) => ({ status: res.statusCode, at: performance.now(), text: await res.body.text() }),
    );

  beforeAll(async () => {
    f = await setupFleet();
    receiver = await startApprovalReceiver(() => ({ status: 202 }));
    const extra = {
      stepUp: { approval: { webhookUrl: receiver.url, callbackSecretFile: secretFile(), timeoutSeconds: 60 } },
      routes: [billingRoute(f.upstream.url)],
    };
    [a, b] = await Promise.all([f.start('pod-a', extra), f.start('pod-b', extra)]);
    user = await f.as.userToken('alice', ['billing:read', 'billing:write']);
  }, 60_000);

  afterAll(async () => {
    await f?.close();
    await receiver?.close();
  });

  it("a request held on B is listed on A's page with its pod, and A's callback releases it within 1 s; a second decision does nothing", async () => {
    const held = hold(b, 1);
    const event = await receiver.nextRequest();
    const cookie = (await signInApprover(a.adminUrl)).cookie;
    await within(2_000, async () => (await page(a.adminUrl, cookie)).includes(`data-approval-id="${event.id}"`));
    const listed = await page(a.adminUrl, cookie);
    expect(listed).toContain('<code>pod-b</code>');
    expect(listed).toContain('/invoices/1');
    expect(listed).not.toContain('local-only');

    const decidedAt = performance.now();
    expect(await callback(a.adminUrl, event.id, event.bodySha256)).toEqual({
      status: 200,
      json: { id: event.id, status: 'decided', decision: 'approved' },
    });
    const res = await held;
    expect(res.status).toBe(200);
    expect(res.at - decidedAt).toBeLessThan(1_000);
    expect(await b.waitForLog((l) => l.audit === 'step_up' && l.decision === 'approved')).toMatchObject({
      via: 'callback',
      approver: 'bot',
    });
    // Single use across the fleet: a second decision on either pod is refused.
    for (const p of [a, b]) expect((await callback(p.adminUrl, event.id, event.bodySha256, 'denied')).status).toBe(409);
    // Nothing secret in Redis: what the page shows, no token.
    expect(f.redis.cli('--scan', '--pattern', 'test-fleet:approval:*')).toBe('');
  }, 30_000);

  it('two pods deciding one approval at once grant once', async () => {
    const held = hold(b, 2);
    const event = await receiver.nextRequest();
    const stored = f.redis.cli('GET', `test-fleet:approval:${event.id}`);
    expect(JSON.parse(stored)).toMatchObject({ pod: 'pod-b', route: 'billing', method: 'DELETE', path: '/invoices/2' });
    expect(stored).not.toContain(user);
    const answers = await Promise.all([
      callback(a.adminUrl, event.id, event.bodySha256, 'approved'),
      callback(b.adminUrl, event.id, event.bodySha256, 'denied'),
    ]);
    expect(answers.map((x) => x.status).sort()).toEqual([200, 409]);
    const winner = answers.find((x) => x.status === 200)!.json.decision;
    expect((await held).status).toBe(winner === 'approved' ? 200 : 403);
  }, 30_000);

  it.skipIf(!HAS_CHROMIUM)(
    "a request held on B is approved on A's page in a browser",
    async () => {
      const held = hold(b, 3);
      const event = await receiver.nextRequest();
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
        headless: true,
      });
      try {
        const tab = await browser.newPage();
        tab.setDefaultTimeout(15_000);
        await tab.goto(`${a.adminUrl}/step-up`);
        await tab.getByLabel(/Your name/).fill('frank');
        await tab.getByLabel(/Approval secret/).fill(CALLBACK_SECRET);
        await tab.getByRole('button', { name: 'Sign in' }).click();
        const card = tab.locator(`[data-approval-id="${event.id}"]`);
        await card.waitFor();
        expect(await card.textContent()).toContain('pod-b');
        await card.getByRole('button', { name: 'Approve' }).click();
        await tab.getByRole('status').waitFor();
        expect((await tab.getByRole('status').textContent()) ?? '').toMatch(/Approved/);
      } finally {
        await browser.close();
      }
      expect((await held).status).toBe(200);
    },
    60_000,
  );

  it('a holding pod that missed a decision (disconnected) settles it from the claim when it reconnects', async () => {
    const held = hold(b, 4);
    const event = await receiver.nextRequest();
    await within(2_000, async () => f.redis.cli('EXISTS', `test-fleet:approval:${event.id}`) === '1');
    // As a pod deciding while B's subscription was down leaves it: the claim, and no message B saw.
    const claim = JSON.stringify({ pod: 'pod-x', via: 'page', decision: 'approved', approver: 'zoe' });
    f.redis.cli('SET', `test-fleet:approval-claim:${event.id}`, claim, 'PX', '60000');
    f.redis.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
    expect((await held).status).toBe(200);
    expect(await b.waitForLog((l) => l.audit === 'step_up' && l.approver === 'zoe', 5_000)).toMatchObject({
      decision: 'approved',
      via: 'page',
    });
  }, 30_000);

  it('the page says local-only while Redis is unavailable', async () => {
    const cookie = (await signInApprover(a.adminUrl)).cookie;
    await f.redis.kill();
    await within(5_000, async () => (await page(a.adminUrl, cookie)).includes('local-only'));
    await f.redis.restart();
    await within(5_000, async () => !(await page(a.adminUrl, cookie)).includes('local-only'));
  }, 30_000);
});
