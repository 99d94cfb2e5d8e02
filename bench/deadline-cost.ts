/**
 * A request's deadline (a route's timeoutMs, armed when the request arrives and cleared at its
 * response headers): one list per timeout length with one timer (src/proxy/deadlines.ts) against
 * one unreferenced setTimeout per request, cleared with clearTimeout. CPU per request, with
 * `inFlight` requests open at a time (each arms its deadline, the oldest is cleared), five rounds,
 * alternating, medians.
 *
 *   node --import tsx bench/deadline-cost.ts
 */
import { type DeadlineEntry, DeadlineList } from '../src/proxy/deadlines.js';
import { median, round } from './lib/stats.js';

const TIMEOUT_MS = 30_000;
const N = 500_000;

class Request implements DeadlineEntry {
  deadlineDue = 0;
  deadlinePrev: DeadlineEntry | undefined = undefined;
  deadlineNext: DeadlineEntry | undefined = undefined;
  deadlineList: DeadlineList | undefined = undefined;
  timer: NodeJS.Timeout | undefined = undefined;
  deadlinePassed(): void {
    throw new Error('no deadline passes in this bench');
  }
}

/** One function for every timer (the request is its argument): no closure per request. */
function onTimeout(r: Request): void {
  r.deadlinePassed();
}

const approaches = {
  'DeadlineList (deadlines.ts)': () => {
    const list = new DeadlineList(TIMEOUT_MS);
    return {
      arm: (r: Request) => list.add(r),
      clear: (r: Request) => list.remove(r),
      close: () => list.close(),
    };
  },
  'setTimeout(...).unref() per request': () => ({
    arm: (r: Request) => {
      r.timer = setTimeout(onTimeout, TIMEOUT_MS, r).unref();
    },
    clear: (r: Request) => clearTimeout(r.timer),
    close: () => undefined,
  }),
};

function run(make: () => { arm(r: Request): void; clear(r: Request): void; close(): void }, inFlight: number): number {
  const a = make();
  const ring: Request[] = Array.from({ length: inFlight }, () => new Request());
  for (const r of ring) a.arm(r);
  const t = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    // A new request per slot (as in the proxy: one object per request), replacing the oldest.
    const slot = i % inFlight;
    a.clear(ring[slot] as Request);
    const r = new Request();
    ring[slot] = r;
    a.arm(r);
  }
  const u = process.cpuUsage(t);
  for (const r of ring) a.clear(r);
  a.close();
  return ((u.user + u.system) * 1000) / N;
}

for (const inFlight of [1, 64, 4096]) {
  const ns = new Map<string, number[]>(Object.keys(approaches).map((k) => [k, []]));
  for (let round = 0; round < 6; round++) {
    for (const [name, make] of Object.entries(approaches)) {
      const v = run(make, inFlight);
      if (round > 0) ns.get(name)?.push(v); // round 0 warms up
    }
  }
  for (const [name, v] of ns) {
    process.stdout.write(
      `${JSON.stringify({ kind: 'deadline-cost', name, inFlight, nsPerRequest: round(median(v), 0) })}\n`,
    );
  }
}
