/**
 * Memory of the shipped CLI, run as the image runs it (each build's own Dockerfile ENTRYPOINT:
 * bin -> dist, its own Node flags), for this build and, with BENCH_BASELINE_DIST=DIR (a `dist/`
 * directory of another checkout), for that one too, one after the other on the same machine:
 *
 *   idle     RSS 15 s after start (V8's memory reducer has had its rounds);
 *   1 user   one user at 1,000 req/s for 60 s: RSS at the end and its peak;
 *   churn    3,000 users in rotation through a 500-entry token cache at 300 req/s for 120 s: RSS at
 *            the end, its peak, and its slope over the last third (MB/min);
 *   upload   one 512 MiB chunked upload after the 1-user run: peak RSS over the RSS before it.
 *
 *   node --import tsx bench/process-memory.ts      (npm run bench runs it; BENCH_SKIP=process-memory skips it)
 *   BENCH_PM_SCALE=0.25 shortens every run to a quarter (a quick look, not the reported figure).
 *   BENCH_PM_NODE_FLAGS='--maglev --turbofan' puts Node flags in front of each build's own.
 *
 * Prints one JSON line per build (`kind: 'process-memory'`) and a table with the targets.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { BENCH_DIR, cpuLayout, startChild } from './lib/children.js';
import { cpuMicros } from './lib/procfs.js';
import { runAutocannon } from './load/autocannon.js';

const env = process.env;
const SCALE = Number(env.BENCH_PM_SCALE ?? 1);
const IDLE_S = 15;
const ONE_USER = { rate: 1000, seconds: Math.round(60 * SCALE) };
const CHURN = { users: 3000, maxEntries: 500, rate: 300, seconds: Math.round(120 * SCALE) };
const UPLOAD_MIB = 512;
const TARGETS = { idle: 64, oneUser: 96, churn: 128, upload: 16, churnSlope: 0.5 };

const CLIENT_ID = 'agent-service';
const CLIENT_SECRET = 'bench-secret';
const SCOPE = 'bench:read';
const layout = { ...cpuLayout(), pinned: false, sut: '', rest: '' };
const work = mkdtempSync(join(tmpdir(), 'dp-process-memory-'));
const secretFile = join(work, 'client-secret');
writeFileSync(secretFile, `${CLIENT_SECRET}\n`);
const r1 = (n: number) => Math.round(n * 10) / 10;

function rssMB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) / 1024;
}

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => ok(port));
    });
    s.once('error', fail);
  });
}

/** A build's start command: its Dockerfile's ENTRYPOINT with /app/ mapped to the checkout. */
function entrypoint(root: string): string[] {
  const line = readFileSync(join(root, 'Dockerfile'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith('ENTRYPOINT '));
  if (!line) throw new Error(`${root}/Dockerfile has no ENTRYPOINT`);
  return (JSON.parse(line.slice('ENTRYPOINT '.length)) as string[]).map((a) => a.replace(/^\/app\//, `${root}/`));
}

interface Running {
  readonly pid: number;
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * Starts the CLI on ports found free a moment before; another process can take one in between
 * (EADDRINUSE, the CLI exits), so a start that exited is tried again on new ports.
 */
async function startCli(root: string, tokenEndpoint: string, upstream: string, maxEntries: number): Promise<Running> {
  for (let attempt = 1; ; attempt++) {
    const started = await startCliOnce(root, tokenEndpoint, upstream, maxEntries);
    if (started !== 'exited') return started;
    if (attempt === 3) throw new Error(`${root}: the CLI exited before it served, ${attempt} times`);
  }
}

async function startCliOnce(
  root: string,
  tokenEndpoint: string,
  upstream: string,
  maxEntries: number,
): Promise<Running | 'exited'> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const file = join(work, `config-${port}.yaml`);
  // JSON is YAML.
  const config = {
    listen: `127.0.0.1:${port}`,
    admin: `127.0.0.1:${adminPort}`,
    authorizationServer: { tokenEndpoint, clientId: CLIENT_ID, clientSecretFile: secretFile },
    cache: { maxTtlSeconds: 3600, refreshAheadSeconds: 30, maxEntries },
    routes: [{ name: 'bench', match: { pathPrefix: '/' }, upstream, scopes: [SCOPE] }],
  };
  writeFileSync(file, JSON.stringify(config));
  const [node, ...entryArgs] = entrypoint(root);
  // BENCH_PM_NODE_FLAGS: extra Node flags in front (e.g. to compare the CLI's own settings with others).
  const args = [...(env.BENCH_PM_NODE_FLAGS ?? '').split(' ').filter(Boolean), ...entryArgs];
  // Access lines go to /dev/null, as in the CPU rows: logging costs what the proxy pays for it.
  const child: ChildProcess = spawn(node === 'node' ? process.execPath : String(node), [...args, '--config', file], {
    cwd: root,
    env: { ...process.env, NODE_OPTIONS: '', NODE_ENV: 'production' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${root}`);
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await request(`http://127.0.0.1:${adminPort}/healthz`);
      await res.body.dump();
      if (res.statusCode === 200) break;
    } catch {
      // Not listening yet.
    }
    if (child.exitCode !== null) return 'exited';
    if (Date.now() > deadline) throw new Error(`${root}: the CLI did not start`);
    await sleep(100);
  }
  return {
    pid,
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise((done) => {
        if (child.exitCode !== null) return done();
        child.once('exit', () => done());
        child.kill('SIGKILL');
      }),
  };
}

/** Samples RSS every `everyMs` while `during` runs. */
async function sampled<T>(pid: number, everyMs: number, during: () => Promise<T>) {
  const samples: { t: number; rss: number }[] = [];
  const t0 = Date.now();
  let on = true;
  const poll = (async () => {
    while (on) {
      samples.push({ t: (Date.now() - t0) / 1000, rss: rssMB(pid) });
      await sleep(everyMs);
    }
  })();
  const result = await during();
  on = false;
  await poll;
  return { result, samples };
}

/** Least-squares slope of RSS over the last third of the samples, MB/min. */
function lastThirdSlope(samples: readonly { t: number; rss: number }[]): number {
  const tail = samples.filter((s) => s.t >= (samples.at(-1)?.t ?? 0) * (2 / 3));
  const n = tail.length;
  if (n < 2) return 0;
  const mx = tail.reduce((a, s) => a + s.t, 0) / n;
  const my = tail.reduce((a, s) => a + s.rss, 0) / n;
  let num = 0;
  let den = 0;
  for (const s of tail) {
    num += (s.t - mx) * (s.rss - my);
    den += (s.t - mx) ** 2;
  }
  return den === 0 ? 0 : (num / den) * 60;
}

async function upload(proxy: Running, token: string): Promise<{ before: number; peak: number; status: number }> {
  const before = rssMB(proxy.pid);
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const total = UPLOAD_MIB * 1024 * 1024;
  async function* body() {
    for (let sent = 0; sent < total; sent += chunk.length) yield chunk;
  }
  const { result, samples } = await sampled(proxy.pid, 50, async () => {
    const res = await request(`${proxy.url}/upload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      body: Readable.from(body()),
    });
    await res.body.dump();
    return res.statusCode;
  });
  return { before, peak: Math.max(...samples.map((s) => s.rss)), status: result };
}

async function measureBuild(name: string, root: string, as: string, upstream: string, token: string, users: string) {
  process.stderr.write(`process-memory: ${name} (${root})\n`);
  const one = await startCli(root, as, upstream, 10_000);
  await sleep(IDLE_S * 1000);
  const idle = rssMB(one.pid);
  const cpu0 = cpuMicros(one.pid);
  const load = await sampled(one.pid, 1000, () =>
    runAutocannon({ url: one.url, connections: 8, durationS: ONE_USER.seconds, rate: ONE_USER.rate, token }, layout),
  );
  const cpuPerRequest = (cpuMicros(one.pid) - cpu0) / load.result.requests;
  const oneUserEnd = rssMB(one.pid);
  const oneUserPeak = Math.max(...load.samples.map((s) => s.rss));
  const up = await upload(one, token);
  await one.stop();

  const churnProxy = await startCli(root, as, upstream, CHURN.maxEntries);
  const churn = await sampled(churnProxy.pid, 2000, () =>
    runAutocannon(
      { url: churnProxy.url, connections: 16, durationS: CHURN.seconds, rate: CHURN.rate, tokensFile: users },
      layout,
    ),
  );
  const churnEnd = rssMB(churnProxy.pid);
  await churnProxy.stop();
  return {
    kind: 'process-memory',
    build: name,
    command: entrypoint(root).join(' '),
    idleMB: r1(idle),
    oneUser: {
      rps: Math.round(load.result.rps),
      non2xx: load.result.non2xx,
      cpuMicrosPerRequest: Math.round(cpuPerRequest),
      endMB: r1(oneUserEnd),
      peakMB: r1(oneUserPeak),
    },
    upload: {
      mib: UPLOAD_MIB,
      status: up.status,
      beforeMB: r1(up.before),
      peakMB: r1(up.peak),
      deltaMB: r1(up.peak - up.before),
    },
    churn: {
      rps: Math.round(churn.result.rps),
      non2xx: churn.result.non2xx,
      endMB: r1(churnEnd),
      peakMB: r1(Math.max(...churn.samples.map((s) => s.rss))),
      lastThirdMBPerMin: r1(lastThirdSlope(churn.samples)),
    },
  };
}

const upstreamChild = await startChild('upstream', 'upstream.ts', {}, { layout, cpus: '' });
const asChild = await startChild(
  'authorization-server',
  'authorization-server.ts',
  { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, accessTokenTtlSeconds: 3600 },
  { layout, cpus: '' },
);
const oneFile = join(work, 'tokens-1.txt');
const usersFile = join(work, `tokens-${CHURN.users}.txt`);
await asChild.request('issue', { count: 1, prefix: 'pm-user-', scope: [SCOPE], expiresInSeconds: 7200, file: oneFile });
await asChild.request('issue', {
  count: CHURN.users,
  prefix: 'pm-churn-',
  scope: [SCOPE],
  expiresInSeconds: 7200,
  file: usersFile,
});
const token = readFileSync(oneFile, 'utf8').trim();
const tokenEndpoint = String(asChild.info.tokenEndpoint);

const builds: [string, string][] = [['current', resolve(BENCH_DIR, '..')]];
if (env.BENCH_BASELINE_DIST) builds.push(['baseline', dirname(resolve(env.BENCH_BASELINE_DIST))]);
const rows: Awaited<ReturnType<typeof measureBuild>>[] = [];
try {
  for (const [name, root] of builds) {
    const row = await measureBuild(name, root, tokenEndpoint, upstreamChild.info.url, token, usersFile);
    process.stdout.write(`${JSON.stringify(row)}\n`);
    rows.push(row);
  }
} finally {
  await asChild.stop();
  await upstreamChild.stop();
  rmSync(work, { recursive: true, force: true });
}

const col = (f: (r: (typeof rows)[number]) => string) => rows.map(f);
const table = [
  ['', ...col((r) => r.build), 'target'],
  ['idle RSS (MB)', ...col((r) => String(r.idleMB)), `≤ ${TARGETS.idle}`],
  [`1 user, ${ONE_USER.rate} req/s: CPU µs per request`, ...col((r) => String(r.oneUser.cpuMicrosPerRequest)), '-'],
  [
    `1 user, ${ONE_USER.rate} req/s, ${ONE_USER.seconds} s: RSS end / peak (MB)`,
    ...col((r) => `${r.oneUser.endMB} / ${r.oneUser.peakMB}`),
    `≤ ${TARGETS.oneUser}`,
  ],
  [
    `churn ${CHURN.users} users / ${CHURN.maxEntries} entries, ${CHURN.rate} req/s, ${CHURN.seconds} s: RSS end / peak (MB)`,
    ...col((r) => `${r.churn.endMB} / ${r.churn.peakMB}`),
    `≤ ${TARGETS.churn}`,
  ],
  ['churn RSS slope, last third (MB/min)', ...col((r) => String(r.churn.lastThirdMBPerMin)), `< ${TARGETS.churnSlope}`],
  [`${UPLOAD_MIB} MiB upload: peak over before (MB)`, ...col((r) => `+${r.upload.deltaMB}`), `≤ +${TARGETS.upload}`],
];
process.stdout.write(`\nProcess memory (shipped CLI, each build's image command)\n`);
for (const [i, row] of table.entries()) {
  process.stdout.write(`| ${row.join(' | ')} |\n`);
  if (i === 0) process.stdout.write(`|${' --- |'.repeat(row.length)}\n`);
}
