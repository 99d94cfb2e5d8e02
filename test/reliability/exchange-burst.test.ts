import { describe, expect, it } from 'vitest';
import { useClosers } from '../helpers/closers.js';
import { exchangesPerUser, get, startRig, tally, userTokens } from './harness.js';

const closers = useClosers();

// The per-attempt timer starts when an exchange has one of the pooled AS connections, not while it
// waits for one: a burst against a slow but healthy AS must not open the circuit breaker.
describe('a burst of new users against a slow, healthy AS', () => {
  it('400 concurrent first requests, AS answering in 300 ms: all 200, one exchange per user, breaker closed', async () => {
    const rig = await startRig(closers, { asDelayMs: 300 });
    const users = await userTokens(rig.as, 400);
    const answers = await Promise.all(users.map((t) => get(rig, '/documents/a', t)));
    expect(tally(answers)).toEqual({ 200: 400 });
    const perUser = exchangesPerUser(rig.as);
    expect(perUser.size).toBe(400);
    expect([...perUser.values()].every((n) => n === 1)).toBe(true);
    expect(rig.as.exchanges).toHaveLength(400);
    expect(rig.proxy.logs.lines().some((l) => String(l.msg).includes('circuit open'))).toBe(false);
  }, 60_000);

  it('beyond the queue bound: 503 with Retry-After for the overflow only, the breaker stays closed', async () => {
    const rig = await startRig(closers, {
      asDelayMs: 300,
      config: {
        authorizationServer: { maxConcurrentExchanges: 4, maxQueuedExchanges: 8, exchangeQueueTimeoutMs: 60_000 },
      },
    });
    const users = await userTokens(rig.as, 60);
    let done = false;
    const all = Promise.all(users.map((t) => get(rig, '/documents/a', t))).finally(() => {
      done = true;
    });
    // While the burst runs the gauges show the slots and the queue.
    const scrape = async () => (await rig.proxy.registry.metrics()).toString();
    const gauge = (text: string, name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? -1);
    let maxInFlight = 0;
    let maxQueued = 0;
    while (!done) {
      const text = await scrape();
      maxInFlight = Math.max(maxInFlight, gauge(text, 'delegate_proxy_token_exchanges_in_flight'));
      maxQueued = Math.max(maxQueued, gauge(text, 'delegate_proxy_token_exchange_queue_depth'));
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(maxInFlight).toBe(4);
    expect(maxQueued).toBeGreaterThan(0);
    expect(maxQueued).toBeLessThanOrEqual(8);
    const answers = await all;
    const counts = tally(answers);
    expect(Object.keys(counts).sort()).toEqual(['200', '503']);
    // Every exchange that was queued or sent succeeded; the overflow never reached the AS.
    expect(counts[200]).toBe(rig.as.exchanges.length);
    expect(counts[200]).toBeGreaterThanOrEqual(12);
    for (const a of answers.filter((x) => x.status === 503)) {
      expect(a.headers['retry-after']).toBe('1');
      expect(JSON.parse(a.text)).toMatchObject({ error: 'temporarily_unavailable' });
    }
    // The AS did nothing wrong: the next user is served at once, no open circuit.
    const [late] = await userTokens(rig.as, 1, 'late');
    expect((await get(rig, '/documents/a', late)).status).toBe(200);
    expect(rig.proxy.logs.lines().some((l) => String(l.msg).includes('circuit open'))).toBe(false);
    expect(await scrape()).toMatch(/delegate_proxy_token_exchange_queue_depth 0\b/);
  }, 60_000);
});
