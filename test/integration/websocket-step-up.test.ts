import { once } from 'node:events';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { useClosers } from '../helpers/closers.js';
import { startAs } from '../helpers/start-as.js';
import { startWsUpstream } from '../helpers/start-ws-upstream.js';
import {
  billingRoute,
  manualTimer,
  startApprovalReceiver,
  startStepUpProxy,
  webhookApproval,
} from '../helpers/step-up-harness.js';

const closers = useClosers();

function scopeOf(authorization: string | undefined): string[] {
  return String(decodeJwt((authorization ?? '').replace(/^Bearer /, '')).scope ?? '').split(' ');
}

describe('WebSocket handshake and step-up (stepUp.onChallenge)', () => {
  it('an upstream insufficient_scope challenge is approved, then the handshake is retried once with a one-call token', async () => {
    const as = await startAs();
    closers.push(() => as.close());
    const upstream = await startWsUpstream({
      refuse: (handshake, _n, res) => {
        if (scopeOf(handshake.headers.authorization).includes('billing:write')) return false;
        res.writeHead(403, {
          'www-authenticate': 'Bearer realm="billing", error="insufficient_scope", scope="billing:write"',
        });
        res.end();
        return true;
      },
    });
    closers.push(() => upstream.close());
    const receiver = await startApprovalReceiver(() => ({
      status: 200,
      body: { decision: 'approved', approver: 'erin' },
    }));
    closers.push(() => receiver.close());
    const proxy = await startStepUpProxy({
      as,
      timer: manualTimer(),
      config: {
        stepUp: { approval: webhookApproval(receiver.url) },
        routes: [billingRoute(upstream.url, { scopes: ['billing:write'], onChallenge: true })],
      },
    });
    closers.push(() => proxy.close());
    const user = await as.userToken('alice', ['billing:read', 'billing:write']);

    const ws = new WebSocket(`${proxy.url.replace(/^http/, 'ws')}/billing/stream`, {
      headers: { authorization: `Bearer ${user}` },
    });
    closers.push(() => ws.terminate());
    await once(ws, 'open');
    ws.send('paid?');
    const [echo] = (await once(ws, 'message')) as [Buffer];
    expect(echo.toString()).toBe('paid?');
    expect(upstream.handshakes.map((h) => scopeOf(h.headers.authorization).sort())).toEqual([
      ['billing:read'],
      ['billing:read', 'billing:write'],
    ]);
    expect(receiver.events[0]).toMatchObject({
      trigger: 'challenge',
      scopes: ['billing:write'],
      method: 'GET',
      path: '/stream',
    });
  });
});
