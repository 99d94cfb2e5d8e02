/**
 * The log destination under the access line: the project's batched destination
 * (src/observability/log-destination.ts) against pino's own sonic-boom configured to batch too
 * (`sync: true`, `minLength`, `periodicFlush`), writing into a pipe that a child process drains, as
 * stdout is in a container. CPU per line of this process (user + system) over a baseline that writes
 * nothing, in a burst and at a steady 5,000 lines/s, each destination in turn, five rounds (medians).
 *
 *   node --import tsx bench/log-destination-cost.ts
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createAccessLog } from '../src/observability/access-line.js';
import { createBatchedDestination, FLUSH_DELAY_MS } from '../src/observability/log-destination.js';
import { median, round } from './lib/stats.js';

const FIELDS = {
  reqId: '5d5d9ae3-0fca-4a0b-b4d3-7a2b4f150abb',
  route: 'docs',
  method: 'GET',
  path: '/docs/1',
  status: 200,
  upstreamStatus: 200,
  durationMs: 1.234,
  cache: 'hit' as const,
  sub: 'alice',
  aborted: false,
  extra: undefined,
};
const base = {
  base: { service: 'delegate-proxy' },
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: (label: string) => ({ level: label }) },
};

/**
 * A pipe whose reader is another process (`cat FIFO > /dev/null`), one per run, its write end opened
 * here: the destination owns the descriptor (sonic-boom closes it at its end).
 */
function pipe(): Pipe {
  const dir = mkdtempSync(join(tmpdir(), 'dp-log-'));
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const reader = spawn('sh', ['-c', `cat "${fifo}" > /dev/null`], { stdio: 'ignore' });
  const fd = openSync(fifo, 'w');
  return {
    fd,
    close: (fdClosed) => {
      if (!fdClosed) closeSync(fd);
      reader.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Pipe {
  readonly fd: number;
  close(fdClosed: boolean): void;
}

/** sonic-boom closes its descriptor at end(); the batched destination leaves it to its owner. */
function finish(dest: Destination, out: Pipe): void {
  dest.end?.();
  out.close(dest.end !== undefined);
}

type Destination = { write(line: string): unknown; flushSync(): void; end?(): void };
/** sonic-boom through pino.destination(), which passes the options on. */
const sonic = (opts: Record<string, unknown>) => (fd: number) =>
  pino.destination({ dest: fd, sync: true, ...opts }) as unknown as Destination;
const destinations: Record<string, (fd: number) => Destination> = {
  // The same loop with nothing written: subtracted from the others (timers, the line itself).
  'none (baseline)': () => ({ write: () => undefined, flushSync: () => undefined }),
  'batched (log-destination.ts)': (fd) => createBatchedDestination({ fd }),
  'sonic-boom sync, minLength 64 KiB, periodicFlush 10 ms': sonic({
    minLength: 64 * 1024,
    maxWrite: 128 * 1024,
    periodicFlush: FLUSH_DELAY_MS,
  }),
  'sonic-boom sync, minLength 8 KiB, periodicFlush 10 ms': sonic({
    minLength: 8 * 1024,
    periodicFlush: FLUSH_DELAY_MS,
  }),
  'sonic-boom sync (one write per line)': sonic({}),
};

function cpuNs(start: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(start);
  return (u.user + u.system) * 1000;
}

/** Back to back: what a busy proxy writes. */
function burst(make: (fd: number) => Destination, lines: number): number {
  const out = pipe();
  const dest = make(out.fd);
  const access = createAccessLog(pino(base, dest as never));
  for (let i = 0; i < 5_000; i++) access.write(FIELDS);
  const t = process.cpuUsage();
  for (let i = 0; i < lines; i++) access.write(FIELDS);
  dest.flushSync();
  const ns = cpuNs(t) / lines;
  finish(dest, out);
  return ns;
}

/** `perMs` lines every millisecond for `ms`: a steady rate, where the periodic flush does the writing. */
async function steady(make: (fd: number) => Destination, perMs: number, ms: number): Promise<number> {
  const out = pipe();
  const dest = make(out.fd);
  const access = createAccessLog(pino(base, dest as never));
  const t = process.cpuUsage();
  let lines = 0;
  const until = performance.now() + ms;
  while (performance.now() < until) {
    for (let i = 0; i < perMs; i++) access.write(FIELDS);
    lines += perMs;
    await new Promise((r) => setTimeout(r, 1));
  }
  dest.flushSync();
  const ns = cpuNs(t) / lines;
  finish(dest, out);
  return ns;
}

const names = Object.keys(destinations);
const results = new Map<string, { burst: number[]; steady: number[] }>(
  names.map((n) => [n, { burst: [], steady: [] }]),
);
for (let round = 0; round < 5; round++) {
  for (const name of names) {
    const make = destinations[name] as (fd: number) => Destination;
    const r = results.get(name) as { burst: number[]; steady: number[] };
    r.burst.push(burst(make, 200_000));
    r.steady.push(await steady(make, 5, 2_000));
  }
}
const baseline = results.get('none (baseline)') as { burst: number[]; steady: number[] };
for (const [name, r] of results) {
  if (r === baseline) continue;
  process.stdout.write(
    `${JSON.stringify({
      kind: 'log-destination',
      name,
      // Over the baseline: what the destination itself costs per line.
      burstNsPerLine: round(median(r.burst) - median(baseline.burst), 0),
      steadyNsPerLine: round(median(r.steady) - median(baseline.steady), 0),
    })}\n`,
  );
}
