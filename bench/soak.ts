/**
 * Churn soak: the real proxy (dist/, its own process, --expose-gc) under steady load
 * from autocannon (its own process), USERS distinct users sent in rotation against a token cache of
 * MAX_ENTRIES, the real authorization server (its own process) and a minimal upstream. Every
 * SAMPLE seconds it prints the proxy's memory (as is, and after a forced full GC), open fds, cache
 * size, requests and exchanges; at the end exchanges against the cache model and a verdict.
 *
 *   npm run soak                         # 300 s, 10,000 users, maxEntries 2000, 200 req/s
 *   npm run soak -- --seconds 120 --rate 300 --users 10000 --max-entries 2000 --sample 10
 *   npm run soak -- --node-flags=--max-semi-space-size=8   # extra V8/Node flags for the proxy
 *   npm run soak -- --snapshots          # heap snapshots after warm-up and at the end (bench/results/)
 *   npm run soak -- --upload-mib 512     # then one chunked upload of that size: the proxy's RSS before and at peak
 *
 * Output: one `SOAK {json}` line per sample and a `SOAK_SUMMARY {json}` line (machine-readable),
 * plus a table and the verdict for people.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { BENCH_DIR, cpuLayout, startChild } from './lib/children.js';
import { runAutocannon } from './load/autocannon.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '300' },
    rate: { type: 'string', default: '200' },
    users: { type: 'string', default: '10000' },
    'max-entries': { type: 'string', default: '2000' },
    sample: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    'node-flags': { type: 'string', default: '' },
    snapshots: { type: 'boolean', default: false },
    'upload-mib': { type: 'string', default: '0' },
  },
});
const SECONDS = Number(args.seconds);
const RATE = Number(args.rate);
const USERS = Number(args.users);
const MAX_ENTRIES = Number(args['max-entries']);
const SAMPLE_S = Number(args.sample);
const CONNECTIONS = Number(args.connections);
const NODE_FLAGS = (args['node-flags'] ?? '').split(/\s+/).filter(Boolean);
// Warm-up: JIT, pools and the cache filling; growth is judged after it.
const WARMUP_S = Math.max(30, Math.round(SECONDS * 0.2));

const CLIENT_ID = 'agent-service';
const CLIENT_SECRET = 'soak-secret';
const SCOPE = 'documents:read';

interface Memory {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  spaces: Record<string, number>;
}
interface Sample {
  before: Memory;
  after: Memory;
  fds: number;
  rssKinds: Record<string, number>;
  cacheSize: number;
  requests: Record<string, number>;
  exchanges: Record<string, number>;
  lookups: Record<string, number>;
}

const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
const r1 = (n: number) => Math.round(n * 10) / 10;

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += ((xs[i] as number) - mx) * ((ys[i] as number) - my);
    den += ((xs[i] as number) - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** One chunked upload through the proxy while its RSS is polled every 100 ms. */
async function uploadPhase(mib: number) {
  const { request } = await import('undici');
  const { Readable } = await import('node:stream');
  const tokens = (await import('node:fs')).readFileSync(tokensFile, 'utf8').split('\n');
  const base = (await proxy.request<Sample>('sample')).after;
  let rssPeak = base.rss;
  let heapPeak = base.heapUsed + base.arrayBuffers;
  let polling = true;
  const poll = (async () => {
    while (polling) {
      const m = await proxy.request<{ rss: number; heapUsed: number; arrayBuffers: number }>('memory');
      rssPeak = Math.max(rssPeak, m.rss);
      heapPeak = Math.max(heapPeak, m.heapUsed + m.arrayBuffers);
      await sleep(100);
    }
  })();
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const total = mib * 1024 * 1024;
  async function* body() {
    for (let sent = 0; sent < total; sent += chunk.length) yield chunk;
  }
  const t0 = performance.now();
  const res = await request(`${String(proxy.info.url)}/documents/upload`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokens[0]}`, 'content-type': 'application/octet-stream' },
    body: Readable.from(body()),
  });
  await res.body.dump();
  const seconds = r1((performance.now() - t0) / 1000);
  polling = false;
  await poll;
  const after = (await proxy.request<Sample>('sample')).after;
  return {
    mib,
    seconds,
    status: res.statusCode,
    rssBefore: base.rss,
    rssPeak,
    rssAfterGc: after.rss,
    heapPeakDelta: r1(heapPeak - base.heapUsed - base.arrayBuffers),
  };
}

const layout = { ...cpuLayout(), pinned: false, sut: '', rest: '' };
const work = mkdtempSync(join(tmpdir(), 'dp-soak-'));
const secretFile = join(work, 'client-secret');
writeFileSync(secretFile, CLIENT_SECRET);

process.stdout.write(
  `soak: ${SECONDS} s, ${USERS} users in rotation, cache.maxEntries ${MAX_ENTRIES}, ${RATE} req/s over ${CONNECTIONS} connections, sample every ${SAMPLE_S} s, warm-up ${WARMUP_S} s, proxy node flags [${NODE_FLAGS.join(' ')}]\n`,
);
const as = await startChild(
  'as',
  'authorization-server.ts',
  { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, accessTokenTtlSeconds: 300 },
  { layout, cpus: '' },
);
const upstream = await startChild('upstream', 'upstream.ts', {}, { layout, cpus: '' });
const tokensFile = join(work, 'tokens.txt');
await as.request('issue', {
  count: USERS,
  prefix: 'soak-user-',
  scope: [SCOPE],
  expiresInSeconds: 3 * 3600,
  file: tokensFile,
});
const proxy = await startChild(
  'proxy',
  'soak-proxy.ts',
  {
    config: {
      logging: { level: 'warn' },
      authorizationServer: { tokenEndpoint: as.info.tokenEndpoint, clientId: CLIENT_ID, clientSecretFile: secretFile },
      cache: { maxEntries: MAX_ENTRIES },
      routes: [
        {
          name: 'documents',
          match: { pathPrefix: '/documents' },
          upstream: upstream.info.url,
          stripPrefix: true,
          scopes: [SCOPE],
        },
      ],
    },
  },
  { layout, cpus: '', nodeFlags: ['--expose-gc', ...NODE_FLAGS] },
);
process.stdout.write(`proxy ${String(proxy.info.node)} pid ${proxy.pid} at ${proxy.info.url}\n`);

const samples: Array<{ t: number; s: Sample }> = [];
const header = [
  't s',
  'rss',
  'rss gc',
  'anon',
  'file',
  'heapTot',
  'heapUsed',
  'used gc',
  'new sp',
  'old sp',
  'ext+ab',
  'fds',
  'cache',
  'requests',
  'non-200',
  'exchanges',
];
process.stdout.write(`${header.map((h) => h.padStart(9)).join('')}\n`);
const take = async (t: number) => {
  const s = await proxy.request<Sample>('sample');
  samples.push({ t, s });
  const req = sum(s.requests);
  const non200 = req - (s.requests['200'] ?? 0);
  const row = [
    t,
    s.before.rss,
    s.after.rss,
    s.rssKinds.RssAnon ?? 0,
    s.rssKinds.RssFile ?? 0,
    s.before.heapTotal,
    s.before.heapUsed,
    s.after.heapUsed,
    s.before.spaces.new_space ?? 0,
    s.before.spaces.old_space ?? 0,
    r1(s.after.external + s.after.arrayBuffers),
    s.fds,
    s.cacheSize,
    req,
    non200,
    sum(s.exchanges),
  ];
  process.stdout.write(`${row.map((v) => String(v).padStart(9)).join('')}\n`);
  process.stdout.write(`SOAK ${JSON.stringify({ t, ...s })}\n`);
};

const started = performance.now();
await take(0);
const load = runAutocannon(
  { url: `${proxy.info.url}/documents/soak`, connections: CONNECTIONS, durationS: SECONDS, rate: RATE, tokensFile },
  layout,
);
let snapshotted = false;
const snapDir = join(BENCH_DIR, 'results');
let loadDone = false;
void load.finally(() => {
  loadDone = true;
});
for (let next = SAMPLE_S; !loadDone; next += SAMPLE_S) {
  const wait = next * 1000 - (performance.now() - started);
  if (wait > 0) await Promise.race([sleep(wait), load.catch(() => undefined)]);
  if (loadDone) break;
  await take(Math.round((performance.now() - started) / 1000));
  if (args.snapshots && !snapshotted && next >= WARMUP_S) {
    mkdirSync(snapDir, { recursive: true });
    process.stdout.write(
      `heap snapshot: ${await proxy.request<string>('snapshot', join(snapDir, 'soak-warm.heapsnapshot'))}\n`,
    );
    snapshotted = true;
  }
}
const result = await load;
await take(Math.round((performance.now() - started) / 1000));
if (args.snapshots)
  process.stdout.write(
    `heap snapshot: ${await proxy.request<string>('snapshot', join(snapDir, 'soak-end.heapsnapshot'))}\n`,
  );
const asCount = await as.request<{ total: number; issued: number }>('exchanges');
const upload = Number(args['upload-mib']) > 0 ? await uploadPhase(Number(args['upload-mib'])) : undefined;

// Verdict. Post-warm-up samples only.
const last = samples[samples.length - 1] as { t: number; s: Sample };
const warm = samples.find((x) => x.t >= WARMUP_S) ?? last;
const after = samples.filter((x) => x.t >= warm.t);
const minutes = (last.t - warm.t) / 60;
const ts = after.map((x) => x.t / 60);
const usedGcSlope = slope(
  ts,
  after.map((x) => x.s.after.heapUsed),
);
const rssSlope = slope(
  ts,
  after.map((x) => x.s.before.rss),
);
const third = after.slice(Math.floor((after.length * 2) / 3));
const rssLastThird =
  third.length > 1
    ? r1((third[third.length - 1] as { s: Sample }).s.before.rss - (third[0] as { s: Sample }).s.before.rss)
    : 0;
// Settled: over the last third of the run RSS grows by less than 1 MB/min.
const rssLastThirdSlope = slope(
  third.map((x) => x.t / 60),
  third.map((x) => x.s.before.rss),
);
const requests = sum(last.s.requests);
const exchanges = sum(last.s.exchanges);
const hits = last.s.lookups.hit ?? 0;
// The cache model: USERS in strict rotation through an LRU of MAX_ENTRIES < USERS never hits (each
// user comes back after USERS-1 others, long after eviction): one exchange per request. With
// MAX_ENTRIES >= USERS: one exchange per user (plus refreshes, the AS tokens live 300 s).
const modelExchanges = MAX_ENTRIES < USERS ? requests : Math.min(requests, USERS);
const summary = {
  node: proxy.info.node,
  seconds: last.t,
  warmupSeconds: warm.t,
  load: result,
  requests,
  non200: requests - (last.s.requests['200'] ?? 0),
  exchanges,
  exchangesAtAs: asCount.total,
  modelExchanges,
  cacheHits: hits,
  cacheSize: last.s.cacheSize,
  rss: {
    start: samples[0]?.s.before.rss,
    warm: warm.s.before.rss,
    end: last.s.before.rss,
    max: Math.max(...samples.map((x) => x.s.before.rss)),
    slopeMBPerMin: r1(rssSlope),
    lastThirdMB: rssLastThird,
    lastThirdSlopeMBPerMin: r1(rssLastThirdSlope),
  },
  heapUsedAfterGc: { warm: warm.s.after.heapUsed, end: last.s.after.heapUsed, slopeMBPerMin: r1(usedGcSlope) },
  heapTotal: { warm: warm.s.before.heapTotal, end: last.s.before.heapTotal },
  newSpace: { start: samples[0]?.s.before.spaces.new_space, end: last.s.before.spaces.new_space },
  fds: { warm: warm.s.fds, end: last.s.fds },
  rssAnon: { warm: warm.s.rssKinds.RssAnon, end: last.s.rssKinds.RssAnon },
  rssFile: { warm: warm.s.rssKinds.RssFile, end: last.s.rssKinds.RssFile },
  upload,
};
const leak = usedGcSlope > 1 && last.s.after.heapUsed - warm.s.after.heapUsed > 0.1 * warm.s.after.heapUsed;
const settled = rssLastThirdSlope < 1;
const verdict = [
  `JS heap after full GC: ${warm.s.after.heapUsed} MB after warm-up → ${last.s.after.heapUsed} MB at ${last.t} s (${r1(usedGcSlope)} MB/min over ${r1(minutes)} min): ${leak ? 'GROWING: possible leak' : 'flat: no leak in the JS heap'}.`,
  `RSS: ${summary.rss.start} MB at start, ${summary.rss.warm} MB after warm-up, ${summary.rss.end} MB at the end (max ${summary.rss.max}); last third ${rssLastThird >= 0 ? '+' : ''}${rssLastThird} MB (${r1(rssLastThirdSlope)} MB/min): ${settled ? 'settled' : 'still growing'}.`,
  `RSS after warm-up → end: anonymous ${summary.rssAnon.warm} → ${summary.rssAnon.end} MB, file-backed ${summary.rssFile.warm} → ${summary.rssFile.end} MB. V8 new space: ${summary.newSpace.start} → ${summary.newSpace.end} MB. fds: ${summary.fds.warm} → ${summary.fds.end}.`,
  `Exchanges: ${exchanges} counted by the proxy, ${asCount.total} at the AS, model ${modelExchanges} (${requests} requests, ${hits} cache hits). Non-200: ${summary.non200}. Load: ${Math.round(result.rps)} req/s, p50 ${r1(result.p50Ms)} ms, p99 ${r1(result.p99Ms)} ms, errors ${result.errors}.`,
];
if (upload) {
  verdict.push(
    `Upload of ${upload.mib} MiB (chunked) in ${upload.seconds} s, status ${upload.status}: proxy RSS ${upload.rssBefore} MB before (after GC), peak ${upload.rssPeak} MB (+${r1(upload.rssPeak - upload.rssBefore)}), ${upload.rssAfterGc} MB after GC; heap+buffers peak +${upload.heapPeakDelta} MB.`,
  );
}
process.stdout.write(`\n${verdict.join('\n')}\n`);
process.stdout.write(`SOAK_SUMMARY ${JSON.stringify({ ...summary, leak, settled })}\n`);
await Promise.all([proxy.stop(), upstream.stop(), as.stop()]);
process.exitCode = leak ? 1 : 0;
