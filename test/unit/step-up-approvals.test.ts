import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { Registry } from 'prom-client';
import { Agent } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import type { Authorized } from '../../src/auth/stage.js';
import type { TokenService } from '../../src/auth/token-service.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import { type ApprovalInput, ApprovalService } from '../../src/step-up/approvals.js';
import { StepUp } from '../../src/step-up/step.js';
import { manualTimer } from '../helpers/step-up-harness.js';

// Nothing here talks to a webhook (webhookUrl unset); the dispatcher only fills the option.
const dispatcher = new Agent();
afterAll(() => dispatcher.close());

const DIGEST = createHash('sha256').update('{"a":1}').digest('hex');
const input: ApprovalInput = {
  route: 'billing',
  scopes: ['billing:write'],
  sub: 'alice',
  actor: undefined,
  method: 'DELETE',
  path: '/invoices/1',
  mcpTools: [],
  bodySha256: DIGEST,
  reason: undefined,
  trigger: 'rule',
  requestId: 'r1',
};

function service(): { approvals: ApprovalService; timer: ReturnType<typeof manualTimer>; metrics: Metrics } {
  const timer = manualTimer();
  const metrics = createMetrics({ registry: new Registry(), version: 'test', defaultMetrics: false });
  const approvals = new ApprovalService({
    webhookUrl: undefined,
    timeoutSeconds: 60,
    secret: undefined,
    dispatcher,
    clock: { now: () => 1_000_000 },
    timer,
    metrics,
    logger: pino({ level: 'silent' }),
  });
  return { approvals, timer, metrics };
}

async function pendingGauge(metrics: Metrics): Promise<number> {
  return (await metrics.stepUpPending.get()).values[0]?.value ?? 0;
}

describe('ApprovalService', () => {
  it('holds an approval until a decision, with its expiry from the clock', async () => {
    const { approvals, metrics } = service();
    const { approval, result } = approvals.request(input, new AbortController().signal);
    expect(approval).toMatchObject({ createdAt: 1_000_000, expiresAt: 1_060_000, bodySha256: DIGEST });
    expect(approvals.list().map((a) => a.id)).toEqual([approval.id]);
    expect(await pendingGauge(metrics)).toBe(1);
    expect(
      approvals.decide(approval.id, {
        decision: 'approved',
        approver: 'bob',
        bodySha256: DIGEST.toUpperCase(),
        via: 'callback',
      }),
    ).toBe('decided');
    expect(await result).toEqual({ outcome: 'approved', approver: 'bob', via: 'callback' });
    expect(approvals.list()).toEqual([]);
    expect(await pendingGauge(metrics)).toBe(0);
  });

  it('ids are single-use', async () => {
    const { approvals } = service();
    const { approval, result } = approvals.request(input, new AbortController().signal);
    approvals.decide(approval.id, { decision: 'denied', approver: undefined, bodySha256: DIGEST, via: 'page' });
    expect(
      approvals.decide(approval.id, { decision: 'approved', approver: undefined, bodySha256: DIGEST, via: 'page' }),
    ).toBe('already_decided');
    expect((await result).outcome).toBe('denied');
  });

  it('an id is bound to its body digest; a mismatch decides nothing', () => {
    const { approvals } = service();
    const { approval } = approvals.request(input, new AbortController().signal);
    expect(
      approvals.decide(approval.id, {
        decision: 'approved',
        approver: undefined,
        bodySha256: '0'.repeat(64),
        via: 'callback',
      }),
    ).toBe('digest_mismatch');
    expect(approvals.get(approval.id)).toBeDefined();
  });

  it('times out when the timer fires, and a late decision is refused', async () => {
    const { approvals, timer, metrics } = service();
    const { approval, result } = approvals.request(input, new AbortController().signal);
    expect(timer.pending).toBe(1);
    timer.fireAll();
    expect(await result).toEqual({ outcome: 'timeout' });
    expect(
      approvals.decide(approval.id, { decision: 'approved', approver: undefined, bodySha256: DIGEST, via: 'callback' }),
    ).toBe('already_decided');
    expect(await pendingGauge(metrics)).toBe(0);
  });

  it('is withdrawn when the agent goes away, and the timer is cancelled', async () => {
    const { approvals, timer } = service();
    const abort = new AbortController();
    const { result } = approvals.request(input, abort.signal);
    abort.abort();
    expect(await result).toEqual({ outcome: 'withdrawn', reason: 'client_disconnected' });
    expect(timer.pending).toBe(0);
  });

  it('close() withdraws everything pending', async () => {
    const { approvals } = service();
    const a = approvals.request(input, new AbortController().signal);
    const b = approvals.request({ ...input, requestId: 'r2' }, new AbortController().signal);
    approvals.close();
    expect(await a.result).toEqual({ outcome: 'withdrawn', reason: 'shutdown' });
    expect(await b.result).toEqual({ outcome: 'withdrawn', reason: 'shutdown' });
  });

  it('unknown ids are unknown', () => {
    const { approvals } = service();
    expect(
      approvals.decide('nope', { decision: 'approved', approver: undefined, bodySha256: DIGEST, via: 'callback' }),
    ).toBe('unknown');
  });
});

describe('StepUp', () => {
  it('security: an agent that disconnected before the rule matched is not held for a person to approve', async () => {
    const { approvals, timer, metrics } = service();
    const tokens = {
      obtain: () => Promise.reject(new Error('no elevated exchange expected')),
    } as unknown as TokenService;
    const step = new StepUp({ approvals, tokens, metrics, clock: { now: () => 1_000_000 }, actor: undefined });
    // The response already closed (client gone while the baseline token was obtained): 'close' will not fire again.
    const res = Object.assign(new EventEmitter(), { destroyed: true, writableFinished: false });
    const ctx = {
      id: 'r1',
      req: { method: 'DELETE', headers: {} },
      res,
      log: pino({ level: 'silent' }),
      route: {
        name: 'billing',
        config: {
          stepUp: {
            scopes: ['billing:write'],
            rules: [{ method: 'DELETE', pathPrefix: '/invoices' }],
            onChallenge: false,
          },
        },
      },
      forwardPath: '/invoices/1',
      subject: { sub: 'alice' },
      scopes: ['billing:read'],
      cacheable: true,
      logFields: {},
    } as unknown as Authorized;
    await expect(step.apply(ctx)).rejects.toMatchObject({ code: 'insufficient_scope', detail: 'step-up withdrawn' });
    expect(approvals.list()).toEqual([]);
    expect(timer.pending).toBe(0);
    expect(await pendingGauge(metrics)).toBe(0);
    expect(res.listenerCount('close')).toBe(0);
  });
});
