import { describe, expect, it } from 'vitest';
import type { Timer } from '../../src/pipeline/timer.js';
import { useClosers } from '../helpers/closers.js';
import { SESSION_REVOKED } from '../helpers/ssf-transmitter.js';
import { call, metricsText, SSF_AUTHORIZATION, setupRevocation } from './revocation-setup.js';

const closers = useClosers();

/** Records what the poll client schedules; the test runs the rounds itself. */
function manualTimer(): Timer & { scheduled: number[]; cancelled: number } {
  const t = {
    scheduled: [] as number[],
    cancelled: 0,
    set(ms: number, _fn: () => void) {
      t.scheduled.push(ms);
      return () => {
        t.cancelled++;
      };
    },
  };
  return t;
}

describe('SSF poll delivery (RFC 8936)', () => {
  it('a poll round applies the SETs and acknowledges them (errors in setErrs) in the next request', async () => {
    const timer = manualTimer();
    const { as, tx, proxy } = await setupRevocation(closers, {
      ssf: (t) => ({ poll: { url: t.pollUrl, intervalSeconds: 7, maxEvents: 2 } }),
      deps: { revocationTimer: timer },
    });
    const alice = await as.userToken('alice', ['documents:read']);
    const bob = await as.userToken('bob', ['documents:read']);
    expect((await call(`${proxy.url}/docs/1`, alice)).status).toBe(200);
    const good = await tx.event(
      SESSION_REVOKED,
      { format: 'iss_sub', iss: as.issuer, sub: 'alice' },
      { jti: 'set-good' },
    );
    const unknown = await tx.event(
      'https://example.com/event-type/other',
      { format: 'opaque', id: 'bob' },
      { jti: 'set-unknown' },
    );
    const forged = await tx.event(
      SESSION_REVOKED,
      { format: 'iss_sub', iss: as.issuer, sub: 'bob' },
      { jti: 'set-forged', forge: true },
    );
    tx.queue.set('set-good', good).set('set-unknown', unknown).set('set-forged', forged);

    expect(timer.scheduled).toEqual([0]); // start(): first round at once
    const poller = proxy.proxy.revocation.poller!;
    await poller.tick();

    // Round 1 gets two SETs (maxEvents 2, more available), round 2 acks them and gets the third,
    // round 3 reports its error; then nothing is owed and the client waits for the interval.
    expect(tx.polls.map((p) => p.body)).toEqual([
      { maxEvents: 2, returnImmediately: true, ack: [] },
      { maxEvents: 2, returnImmediately: true, ack: ['set-good', 'set-unknown'] },
      {
        maxEvents: 2,
        returnImmediately: true,
        ack: [],
        setErrs: {
          'set-forged': {
            err: 'invalid_key',
            description: 'the SET signature does not verify with the transmitter keys',
          },
        },
      },
    ]);
    expect(tx.polls.every((p) => p.authorization === SSF_AUTHORIZATION)).toBe(true);
    expect(tx.queue.size).toBe(0);
    expect(timer.scheduled.at(-1)).toBe(7000);

    expect((await call(`${proxy.url}/docs/2`, alice)).status).toBe(401);
    expect((await call(`${proxy.url}/docs/2`, bob)).status).toBe(200);
    const metrics = await metricsText(proxy.adminUrl);
    expect(metrics).toContain('delegate_proxy_security_events_total{outcome="accepted"} 2');
    expect(metrics).toContain('delegate_proxy_security_events_total{outcome="rejected"} 1');

    // A SET delivered again (its ack was lost) is acknowledged, not applied twice or reported.
    tx.queue.set('set-good', good);
    await poller.tick();
    expect(tx.polls.at(-1)?.body.ack).toEqual(['set-good']);
    expect(tx.queue.size).toBe(0);
    expect(proxy.logs.lines().filter((l) => l.audit === 'revocation')).toHaveLength(1);
  });

  it('keeps acknowledgements until a request carrying them succeeds', async () => {
    const timer = manualTimer();
    const { as, tx, proxy } = await setupRevocation(closers, {
      ssf: (t) => ({ poll: { url: t.pollUrl, intervalSeconds: 3 } }),
      deps: { revocationTimer: timer },
    });
    const alice = await as.userToken('alice', ['documents:read']);
    tx.queue.set(
      'set-1',
      await tx.event(SESSION_REVOKED, { format: 'iss_sub', iss: as.issuer, sub: 'alice' }, { jti: 'set-1' }),
    );
    const poller = proxy.proxy.revocation.poller!;
    tx.failPoll = (body) => (body.ack?.length ?? 0) > 0; // the request carrying the ack fails
    await poller.tick();
    expect(tx.polls.map((p) => p.body.ack)).toEqual([[], ['set-1']]);
    expect(timer.scheduled.at(-1)).toBe(6000); // backed off: 2 × interval
    expect((await call(`${proxy.url}/docs/1`, alice)).status).toBe(401); // applied although not yet acknowledged
    tx.failPoll = () => false;
    await poller.tick();
    expect(tx.polls.slice(2).map((p) => p.body.ack)).toEqual([['set-1']]);
    expect(tx.queue.size).toBe(0);
    expect(timer.scheduled.at(-1)).toBe(3000);
  });

  it('backs off after failures and stops on close', async () => {
    const timer = manualTimer();
    const { as, tx, proxy } = await setupRevocation(closers, {
      ssf: (t) => ({ poll: { url: `${t.issuer}/no-such-endpoint`, intervalSeconds: 2 } }),
      deps: { revocationTimer: timer },
    });
    const alice = await as.userToken('alice', ['documents:read']);
    const poller = proxy.proxy.revocation.poller!;
    await poller.tick();
    await poller.tick();
    await poller.tick();
    expect(timer.scheduled).toEqual([0, 4000, 8000, 16000]);
    expect(tx.polls).toHaveLength(0);
    // A transmitter that cannot be polled delays revocations; it does not refuse the users' requests.
    expect((await call(`${proxy.url}/docs/1`, alice)).status).toBe(200);
    await proxy.close();
    expect(timer.cancelled).toBe(1);
    await poller.tick();
    expect(timer.scheduled).toHaveLength(4); // nothing scheduled after close
  });
});
