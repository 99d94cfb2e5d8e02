/**
 * The cost of delegation, side by side. Starts on 127.0.0.1, each in its own process:
 * a minimal upstream, the real dev authorization server, and the systems under test; then runs the
 * configurations interleaved (A B C D E F, A B C D E F, ...) and reports medians and per-round ratios.
 *
 * Output: one JSON line per measurement (`"kind":"measurement"`, `"kind":"fixed-rate"`, ...), stable
 * across versions, then a markdown summary. Environment knobs (defaults in brackets):
 *   BENCH_ROUNDS [3]  BENCH_DURATION [10] s  BENCH_CONNECTIONS [16]  BENCH_USERS [10000]
 *   BENCH_RATE [1000] req/s for the same-load latency phase  BENCH_PIN [1]  BENCH_TOOL [wrk if installed]
 *   BENCH_CONFIGS (comma list of config names)  BENCH_SKIP (as-load,memory,herd,process-memory)
 *   BENCH_BASELINE_DIST=DIR adds the same proxy built from another tree (a `dist/` directory, e.g. main
 *   before a change, built with `git worktree` or `git archive`) as configurations base-*, measured in the
 *   same rounds, with the ratios new/base.
 *   BENCH_PROXY_NODE_FLAGS: Node flags for this build's delegate-proxy processes (e.g. the ones bin adds:
 *   '--max-semi-space-size=4 --no-maglev'); the others run with Node's defaults.
 *   BENCH_PROXY_ENV: environment for the same processes, as space-separated NAME=value (e.g. the
 *   glibc settings bin sets: 'MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072').
 *   BENCH_ATTRIBUTION=1 adds configurations that split the cost (see BENCHMARKS.md "Where the time goes").
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { BENCH_DIR, type Child, cpuLayout, pinned, repin, startChild } from './lib/children.js';
import {
  CALL_BODY,
  LIST_BODY,
  MCP_HEADERS,
  MCP_SCOPES,
  MODERN_CALL_BODY,
  MODERN_HEADERS,
  mcpRoute,
} from './lib/mcp-traffic.js';
import { type CacheCounters, cacheCounters, diffCounters } from './lib/metrics.js';
import { type Nginx, nginxBinary, startNginx } from './lib/nginx.js';
import { cpuMicros, peakRssKiB, procfsAvailable } from './lib/procfs.js';
import { median, round, table } from './lib/stats.js';
import { runAutocannon } from './load/autocannon.js';
import type { LoadResult, LoadSpec } from './load/result.js';
import { runWrk, wrkAvailable } from './load/wrk.js';

const env = process.env;
const ROUNDS = Number(env.BENCH_ROUNDS ?? 3);
const DURATION_S = Number(env.BENCH_DURATION ?? 10);
const FIRST_WARMUP_S = 5;
const WARMUP_S = 2;
const CONNECTIONS = Number(env.BENCH_CONNECTIONS ?? 16);
const USERS = Number(env.BENCH_USERS ?? 10_000);
const RATE = Number(env.BENCH_RATE ?? 1000);
const RATE_DURATION_S = 5;
const RATE_CONNECTIONS = 8;
const HERD = 1000;
const SKIP = new Set((env.BENCH_SKIP ?? '').split(',').filter(Boolean));

const CLIENT_ID = 'agent-service';
const CLIENT_SECRET = 'bench-secret';
const SCOPE = 'bench:read';
// Longer than the whole run: the measured windows are steady state (no expiry, no refresh).
const TOKEN_TTL_S = 3600;
const SUBJECT_TTL_S = 7200;

interface Config {
  readonly name: string;
  readonly label: string;
  readonly url: string;
  /** Processes whose CPU time is the configuration's cost. */
  pids(): number[];
  readonly token?: string;
  readonly tokensFile?: string;
  /** Method, path, body and headers when not `GET /`. */
  readonly request?: Pick<LoadSpec, 'method' | 'path' | 'body' | 'headers'>;
  readonly adminUrl?: string;
  /** The upstream itself is measured: move it onto the measured core for the run. */
  readonly direct?: boolean;
}

interface Measurement {
  readonly kind: 'measurement' | 'fixed-rate';
  readonly round: number;
  readonly config: string;
  readonly tool: string;
  readonly connections: number;
  readonly targetRate: number | null;
  readonly durationS: number;
  readonly requests: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly cpuUsPerReq: number;
  readonly peakRssMiB: number;
  readonly errors: number;
  readonly non2xx: number;
  readonly exchanges: number | null;
  readonly cacheMisses: number | null;
}

function emit(line: object): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function note(text: string): void {
  process.stderr.write(`[bench] ${text}\n`);
}

const started = Date.now();
const layout = cpuLayout();
const useWrk = (env.BENCH_TOOL ?? (wrkAvailable() ? 'wrk' : 'autocannon')) === 'wrk';
const nginxBin = nginxBinary();
if (!procfsAvailable()) throw new Error('bench needs Linux /proc to read per-process CPU time');

const dir = mkdtempSync(join(tmpdir(), 'dp-bench-'));
const secretFile = join(dir, 'client-secret');
writeFileSync(secretFile, `${CLIENT_SECRET}\n`);
const children: Child[] = [];
let nginx: Nginx | undefined;

async function closed(spec: LoadSpec): Promise<LoadResult> {
  return useWrk ? runWrk(spec, layout) : runAutocannon(spec, layout);
}

function proxyConfig(
  upstream: string,
  tokenEndpoint: string,
  maxEntries: number,
  level = 'info',
): Record<string, unknown> {
  return {
    authorizationServer: { tokenEndpoint, clientId: CLIENT_ID, clientSecretFile: secretFile },
    cache: { maxTtlSeconds: TOKEN_TTL_S, refreshAheadSeconds: 30, maxEntries },
    routes: [{ name: 'bench', match: { pathPrefix: '/' }, upstream, scopes: [SCOPE] }, mcpRoute(upstream)],
    logging: { level },
  };
}

async function main(): Promise<void> {
  emit({
    kind: 'env',
    date: new Date().toISOString(),
    node: process.version,
    cores: layout.cores,
    cpu: cpus()[0]?.model ?? 'unknown',
    pinned: layout.pinned ? { measured: layout.sut, rest: layout.rest } : false,
    loadTool: useWrk ? 'wrk' : 'autocannon',
    nginx: nginxBin ?? null,
    rounds: ROUNDS,
    durationS: DURATION_S,
    connections: CONNECTIONS,
    users: USERS,
    fixedRate: RATE,
  });

  const rest = { layout, cpus: layout.rest };
  const sut = { layout, cpus: layout.sut };
  const upstream = await startChild('upstream', 'upstream.ts', {}, rest);
  const as = await startChild(
    'authorization-server',
    'authorization-server.ts',
    { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, accessTokenTtlSeconds: TOKEN_TTL_S },
    rest,
  );
  children.push(upstream, as);
  const tokenEndpoint = String(as.info.tokenEndpoint);

  const oneFile = join(dir, 'tokens-1.txt');
  const usersFile = join(dir, `tokens-${USERS}.txt`);
  let t = Date.now();
  await as.request('issue', {
    count: 1,
    prefix: 'bench-user-',
    scope: [SCOPE, ...MCP_SCOPES],
    expiresInSeconds: SUBJECT_TTL_S,
    file: oneFile,
  });
  const issued = await as.request<{ count: number; bytes: number }>('issue', {
    count: USERS,
    prefix: 'rotating-user-',
    scope: [SCOPE],
    expiresInSeconds: SUBJECT_TTL_S,
    file: usersFile,
  });
  note(`issued ${issued.count} subject tokens (${issued.bytes} bytes each) in ${Date.now() - t} ms`);
  const oneToken = readFileSync(oneFile, 'utf8').trim();

  const bare = await startChild('bare-http-proxy', 'bare-http-proxy.ts', { upstream: upstream.info.url }, sut);
  const undici = await startChild('undici-forwarder', 'undici-forwarder.ts', { upstream: upstream.info.url }, sut);
  const dispatch = await startChild(
    'undici-dispatch',
    'undici-forwarder.ts',
    { upstream: upstream.info.url, mode: 'dispatch' },
    sut,
  );
  const proxySut = {
    ...sut,
    nodeFlags: (env.BENCH_PROXY_NODE_FLAGS ?? '').split(' ').filter(Boolean),
    env: Object.fromEntries(
      (env.BENCH_PROXY_ENV ?? '')
        .split(' ')
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    ),
  };
  const warm = await startChild(
    'delegate-proxy-warm',
    'delegate-proxy.ts',
    { config: proxyConfig(upstream.info.url, tokenEndpoint, 10_000) },
    proxySut,
  );
  const many = await startChild(
    'delegate-proxy-users',
    'delegate-proxy.ts',
    { config: proxyConfig(upstream.info.url, tokenEndpoint, USERS * 2) },
    proxySut,
  );
  children.push(bare, undici, dispatch, warm, many);
  const attribution: Config[] = [];
  if (env.BENCH_BASELINE_DIST) {
    const baseEnv = { env: { BENCH_DIST: env.BENCH_BASELINE_DIST } };
    const baseWarm = await startChild(
      'baseline-warm',
      'delegate-proxy.ts',
      { config: proxyConfig(upstream.info.url, tokenEndpoint, 10_000) },
      { ...sut, ...baseEnv },
    );
    const baseMany = await startChild(
      'baseline-users',
      'delegate-proxy.ts',
      { config: proxyConfig(upstream.info.url, tokenEndpoint, USERS * 2) },
      { ...sut, ...baseEnv },
    );
    children.push(baseWarm, baseMany);
    const w = {
      url: baseWarm.info.url,
      pids: () => [baseWarm.pid],
      token: oneToken,
      adminUrl: String(baseWarm.info.adminUrl),
    };
    attribution.push(
      { name: 'base-warm', label: 'B4 baseline build, warm, 1 user', ...w },
      {
        name: 'base-users',
        label: `B5 baseline build, ${USERS} users`,
        url: baseMany.info.url,
        pids: () => [baseMany.pid],
        tokensFile: usersFile,
        adminUrl: String(baseMany.info.adminUrl),
      },
      {
        name: 'base-post',
        label: 'B9 baseline build, 1 KiB POST, plain route',
        ...w,
        request: { method: 'POST', path: '/call', body: CALL_BODY, headers: MCP_HEADERS },
      },
      {
        name: 'base-mcp-call',
        label: 'B10 baseline build, MCP tools/call (1 KiB)',
        ...w,
        request: { method: 'POST', path: '/mcp', body: CALL_BODY, headers: MCP_HEADERS },
      },
    );
  }
  if (env.BENCH_ATTRIBUTION === '1') {
    const selfPipeline = await startChild(
      'bare-self-pipeline',
      'bare-http-proxy.ts',
      { upstream: upstream.info.url, mode: 'self-pipeline' },
      sut,
    );
    const selfPipe = await startChild(
      'bare-self-pipe',
      'bare-http-proxy.ts',
      { upstream: upstream.info.url, mode: 'self-pipe' },
      sut,
    );
    const quiet = await startChild(
      'delegate-warm-quiet',
      'delegate-proxy.ts',
      { config: proxyConfig(upstream.info.url, tokenEndpoint, 10_000, 'warn') },
      sut,
    );
    children.push(selfPipeline, selfPipe, quiet);
    attribution.push(
      {
        name: 'bare-self-pipeline',
        label: 'A1 http-proxy, response leg as src/proxy/forwarder.ts',
        url: selfPipeline.info.url,
        pids: () => [selfPipeline.pid],
      },
      {
        name: 'bare-self-pipe',
        label: 'A2 http-proxy, own response leg with pipe()',
        url: selfPipe.info.url,
        pids: () => [selfPipe.pid],
      },
      {
        name: 'delegate-warm-quiet',
        label: 'A3 delegate-proxy warm, logging: warn (no access line)',
        url: quiet.info.url,
        pids: () => [quiet.pid],
        token: oneToken,
        adminUrl: String(quiet.info.adminUrl),
      },
    );
  }
  if (nginxBin) nginx = await startNginx(nginxBin, layout, upstream.info.url);
  else note('nginx not installed: configuration 2 skipped');

  const all: Config[] = [
    { name: 'direct', label: '1 direct to upstream', url: upstream.info.url, pids: () => [upstream.pid], direct: true },
    ...(nginx
      ? [{ name: 'nginx', label: '2 nginx keep-alive proxy', url: nginx.url, pids: () => nginx?.pids() ?? [] }]
      : []),
    { name: 'bare-http-proxy', label: '3 bare http-proxy', url: bare.info.url, pids: () => [bare.pid] },
    {
      name: 'delegate-warm',
      label: '4 delegate-proxy, warm, 1 user',
      url: warm.info.url,
      pids: () => [warm.pid],
      token: oneToken,
      adminUrl: String(warm.info.adminUrl),
    },
    {
      name: 'delegate-users',
      label: `5 delegate-proxy, ${USERS} users`,
      url: many.info.url,
      pids: () => [many.pid],
      tokensFile: usersFile,
      adminUrl: String(many.info.adminUrl),
    },
    {
      name: 'undici-forwarder',
      label: '6 bare undici Pool.stream forwarder (reference)',
      url: undici.info.url,
      pids: () => [undici.pid],
    },
    {
      name: 'undici-dispatch',
      label: '7 bare undici Pool.dispatch forwarder (the engine floor)',
      url: dispatch.info.url,
      pids: () => [dispatch.pid],
    },
    // MCP traffic: a 1 KiB tools/call POST, and a tools/list answer filtered vs passed through.
    {
      name: 'bare-post',
      label: '8 bare http-proxy, 1 KiB POST',
      url: bare.info.url,
      pids: () => [bare.pid],
      request: { method: 'POST', path: '/mcp', body: CALL_BODY, headers: MCP_HEADERS },
    },
    {
      name: 'delegate-post',
      label: '9 delegate-proxy, 1 KiB POST, plain route',
      url: warm.info.url,
      pids: () => [warm.pid],
      token: oneToken,
      adminUrl: String(warm.info.adminUrl),
      request: { method: 'POST', path: '/call', body: CALL_BODY, headers: MCP_HEADERS },
    },
    {
      name: 'delegate-mcp-call',
      label: '10 delegate-proxy, MCP tools/call (1 KiB), mcp route',
      url: warm.info.url,
      pids: () => [warm.pid],
      token: oneToken,
      adminUrl: String(warm.info.adminUrl),
      request: { method: 'POST', path: '/mcp', body: CALL_BODY, headers: MCP_HEADERS },
    },
    {
      name: 'bare-post-modern',
      label: '8b bare http-proxy, 1 KiB POST (MCP 2026-07-28 body and headers)',
      url: bare.info.url,
      pids: () => [bare.pid],
      request: { method: 'POST', path: '/mcp', body: MODERN_CALL_BODY, headers: MODERN_HEADERS },
    },
    {
      name: 'delegate-mcp-call-modern',
      label: '10b delegate-proxy, MCP 2026-07-28 tools/call (1 KiB), mcp route',
      url: warm.info.url,
      pids: () => [warm.pid],
      token: oneToken,
      adminUrl: String(warm.info.adminUrl),
      request: { method: 'POST', path: '/mcp', body: MODERN_CALL_BODY, headers: MODERN_HEADERS },
    },
    {
      name: 'delegate-list-json-plain',
      label: '11 delegate-proxy, tools/list JSON, plain route (unfiltered)',
      url: warm.info.url,
      pids: () => [warm.pid],
      token: oneToken,
      adminUrl: String(warm.info.adminUrl),
      request: { method: 'POST', path: '/tools-list', body: LIST_BODY, headers: MCP_HEADERS },
    },
    {
      name: 'delegate-list-json-mcp',
      label: '12 delegate-proxy, tools/list JSON, mcp route (filtered)',
      url: warm.info.url,
      pids: () => [warm.pid],
      token: oneToken,
      adminUrl: String(warm.info.adminUrl),
      request: { method: 'POST', path: '/mcp/tools-list', body: LIST_BODY, headers: MCP_HEADERS },
    },
    {
      name: 'delegate-list-sse-plain',
      label: '13 delegate-proxy, tools/list SSE, plain route (unfiltered)',
      url: warm.info.url,
      pids: () => [warm.pid],
      token: oneToken,
      adminUrl: String(warm.info.adminUrl),
      request: { method: 'POST', path: '/sse/tools-list', body: LIST_BODY, headers: MCP_HEADERS },
    },
    {
      name: 'delegate-list-sse-mcp',
      label: '14 delegate-proxy, tools/list SSE, mcp route (filtered)',
      url: warm.info.url,
      pids: () => [warm.pid],
      token: oneToken,
      adminUrl: String(warm.info.adminUrl),
      request: { method: 'POST', path: '/mcp/sse/tools-list', body: LIST_BODY, headers: MCP_HEADERS },
    },
    ...attribution,
  ];
  const only = env.BENCH_CONFIGS?.split(',');
  const configs = only ? all.filter((c) => only.includes(c.name)) : all;

  // Cold start: every user's first request is an exchange at the real AS.
  t = Date.now();
  await warmUsers(many.info.url, usersFile);
  for (const c of attribution) if (c.tokensFile) await warmUsers(c.url, c.tokensFile);
  await warmUsers(warm.info.url, oneFile);
  for (const c of attribution) if (c.token) await warmUsers(c.url, oneFile);
  const coldMs = Date.now() - t;
  const size = await many.request<number>('cacheSize');
  emit({
    kind: 'cold-start',
    users: USERS,
    cachedEntries: size,
    ms: coldMs,
    exchangesPerS: round((USERS / coldMs) * 1000, 1),
  });
  if (size !== USERS) throw new Error(`expected ${USERS} cached entries after warming, found ${size}`);

  const results: Measurement[] = [];
  for (let r = 1; r <= ROUNDS; r++) {
    for (const c of configs) {
      if (c.direct) repin(layout, upstream.pid, layout.sut);
      try {
        const load = {
          url: c.url,
          ...(c.token ? { token: c.token } : {}),
          ...(c.tokensFile ? { tokensFile: c.tokensFile } : {}),
          ...c.request,
        };
        await closed({ ...load, connections: CONNECTIONS, durationS: r === 1 ? FIRST_WARMUP_S : WARMUP_S });
        const m = await measure(r, c, { ...load, connections: CONNECTIONS, durationS: DURATION_S }, 'measurement');
        const f = await measure(
          r,
          c,
          { ...load, connections: RATE_CONNECTIONS, durationS: RATE_DURATION_S, rate: RATE },
          'fixed-rate',
        );
        results.push(m, f);
        emit(m);
        emit(f);
      } finally {
        if (c.direct) repin(layout, upstream.pid, layout.rest);
      }
    }
    note(`round ${r}/${ROUNDS} done at ${Math.round((Date.now() - started) / 1000)} s`);
  }

  const herd = SKIP.has('herd') ? [] : await herds(warm.info.url, String(warm.info.adminUrl), as);
  const asLoad = SKIP.has('as-load') ? [] : await script('as-load.ts', []);
  const memory = SKIP.has('memory') ? [] : await script('memory.ts', ['--expose-gc']);
  // The shipped CLI's RSS (idle, 1 user at 1,000 req/s, churn, upload), this build and the baseline: prints its own table.
  if (!SKIP.has('process-memory')) await script('process-memory.ts', []);

  summarize(configs, results, { herd, asLoad, memory });
  emit({ kind: 'done', seconds: Math.round((Date.now() - started) / 1000) });
}

async function measure(roundNo: number, c: Config, spec: LoadSpec, kind: Measurement['kind']): Promise<Measurement> {
  const before = c.adminUrl ? await cacheCounters(c.adminUrl) : undefined;
  const cpu0 = c.pids().reduce((s, pid) => s + cpuMicros(pid), 0);
  const load = kind === 'fixed-rate' ? await runAutocannon(spec, layout) : await closed(spec);
  const cpu1 = c.pids().reduce((s, pid) => s + cpuMicros(pid), 0);
  const after: CacheCounters | undefined = c.adminUrl ? await cacheCounters(c.adminUrl) : undefined;
  const d = before && after ? diffCounters(before, after) : undefined;
  return {
    kind,
    round: roundNo,
    config: c.name,
    tool: load.tool,
    connections: spec.connections,
    targetRate: spec.rate ?? null,
    durationS: round(load.durationS, 3),
    requests: load.requests,
    rps: round(load.rps, 1),
    p50Ms: round(load.p50Ms, 3),
    p99Ms: round(load.p99Ms, 3),
    cpuUsPerReq: round((cpu1 - cpu0) / Math.max(1, load.requests), 1),
    peakRssMiB: round(c.pids().reduce((s, pid) => s + peakRssKiB(pid), 0) / 1024, 1),
    errors: load.errors,
    non2xx: load.non2xx,
    exchanges: d ? d.exchanges : null,
    cacheMisses: d ? d.misses : null,
  };
}

/** Sends each token once through a proxy (16 at a time); every answer must be 200. */
async function warmUsers(url: string, file: string): Promise<void> {
  const tokens = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const pool = new Pool(url, { connections: 16 });
  let next = 0;
  let failed = 0;
  const worker = async (): Promise<void> => {
    while (next < tokens.length) {
      const token = tokens[next++];
      const res = await pool.request({
        path: '/',
        method: 'GET',
        headers: { authorization: `Bearer ${token}` },
        headersTimeout: 10_000,
      });
      await res.body.dump();
      if (res.statusCode !== 200) failed++;
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  await pool.close();
  if (failed > 0) throw new Error(`${failed} of ${tokens.length} warm-up requests failed`);
}

interface HerdResult {
  readonly kind: 'herd';
  readonly requests: number;
  readonly users: number;
  readonly statuses: Record<string, number>;
  readonly exchangesAtAs: number;
  readonly lookups: CacheCounters;
  readonly ms: number;
}

/** 1,000 concurrent first requests for fresh users: the AS must see one exchange per user. */
async function herds(url: string, adminUrl: string, as: Child): Promise<HerdResult[]> {
  const out: HerdResult[] = [];
  for (const users of [1, 10]) {
    const file = join(dir, `herd-${users}.txt`);
    await as.request('issue', {
      count: users,
      prefix: `herd-${users}-`,
      scope: [SCOPE],
      expiresInSeconds: SUBJECT_TTL_S,
      file,
    });
    const tokens = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    const pool = new Pool(url, { connections: HERD });
    const asBefore = await as.request<{ issued: number }>('exchanges');
    const before = await cacheCounters(adminUrl);
    const t = Date.now();
    const statuses: Record<string, number> = {};
    await Promise.all(
      Array.from({ length: HERD }, async (_, i) => {
        const res = await pool.request({
          path: '/',
          method: 'GET',
          headers: { authorization: `Bearer ${tokens[i % tokens.length]}` },
          headersTimeout: 30_000,
        });
        await res.body.dump();
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
      }),
    );
    const ms = Date.now() - t;
    await pool.close();
    const asAfter = await as.request<{ issued: number }>('exchanges');
    const lookups = diffCounters(before, await cacheCounters(adminUrl));
    const r: HerdResult = {
      kind: 'herd',
      requests: HERD,
      users,
      statuses,
      exchangesAtAs: asAfter.issued - asBefore.issued,
      lookups,
      ms,
    };
    emit(r);
    out.push(r);
  }
  return out;
}

/** Runs a bench script in its own process and collects its JSON lines. */
async function script(name: string, nodeFlags: string[]): Promise<Record<string, unknown>[]> {
  const [cmd, argv] = pinned(layout, layout.sut, process.execPath, [
    ...nodeFlags,
    '--import',
    'tsx',
    `${BENCH_DIR}${name}`,
  ]);
  const text = await new Promise<string>((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString('utf8');
    });
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${name} exited with ${code}`))));
  });
  process.stdout.write(text);
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function summarize(
  configs: Config[],
  results: Measurement[],
  extra: { herd: HerdResult[]; asLoad: Record<string, unknown>[]; memory: Record<string, unknown>[] },
): void {
  const of = (kind: Measurement['kind'], name: string): Measurement[] =>
    results.filter((m) => m.kind === kind && m.config === name);
  const med = (kind: Measurement['kind'], name: string, f: (m: Measurement) => number): number =>
    median(of(kind, name).map(f));
  const rows = configs.map((c) => [
    c.label,
    round(
      med('measurement', c.name, (m) => m.rps),
      0,
    ),
    round(
      med('measurement', c.name, (m) => m.p50Ms),
      2,
    ),
    round(
      med('measurement', c.name, (m) => m.p99Ms),
      2,
    ),
    round(
      med('measurement', c.name, (m) => m.cpuUsPerReq),
      1,
    ),
    round(
      med('fixed-rate', c.name, (m) => m.rps),
      0,
    ),
    round(
      med('fixed-rate', c.name, (m) => m.p50Ms),
      3,
    ),
    round(
      med('fixed-rate', c.name, (m) => m.p99Ms),
      3,
    ),
    round(
      med('fixed-rate', c.name, (m) => m.cpuUsPerReq),
      1,
    ),
    round(Math.max(...of('measurement', c.name).map((m) => m.peakRssMiB)), 1),
  ]);
  const lines: string[] = [];
  lines.push(
    `\n## Results (median of ${ROUNDS} interleaved rounds; ${CONNECTIONS} connections, ${DURATION_S} s each; fixed rate ${RATE} req/s over ${RATE_CONNECTIONS} connections, ${RATE_DURATION_S} s)\n`,
  );
  lines.push(
    table(
      [
        'configuration',
        'req/s',
        'p50 ms',
        'p99 ms',
        'CPU µs/req',
        `achieved req/s @${RATE}/s`,
        `p50 ms @${RATE}/s`,
        `p99 ms @${RATE}/s`,
        `CPU µs/req @${RATE}/s`,
        'peak RSS MiB',
      ],
      rows,
    ),
  );

  // Ratios per round (same round = interleaved neighbours), then the median over rounds.
  const ratio = (
    kind: Measurement['kind'],
    a: string,
    b: string,
    f: (m: Measurement) => number,
  ): { med: number; min: number; max: number } => {
    const per: number[] = [];
    for (let r = 1; r <= ROUNDS; r++) {
      const x = results.find((m) => m.kind === kind && m.config === a && m.round === r);
      const y = results.find((m) => m.kind === kind && m.config === b && m.round === r);
      if (x && y) per.push(f(x) / f(y));
    }
    return { med: round(median(per), 3), min: round(Math.min(...per), 3), max: round(Math.max(...per), 3) };
  };
  const diff = (kind: Measurement['kind'], a: string, b: string, f: (m: Measurement) => number): number => {
    const per: number[] = [];
    for (let r = 1; r <= ROUNDS; r++) {
      const x = results.find((m) => m.kind === kind && m.config === a && m.round === r);
      const y = results.find((m) => m.kind === kind && m.config === b && m.round === r);
      if (x && y) per.push(f(x) - f(y));
    }
    return round(median(per), 3);
  };
  const names = new Set(configs.map((c) => c.name));
  const ratioRows: (string | number)[][] = [];
  const summary: Record<string, unknown> = { kind: 'summary' };
  const pairs: [string, string][] = [];
  for (const a of ['delegate-warm', 'delegate-users', 'undici-forwarder', 'undici-dispatch'])
    for (const b of ['bare-http-proxy', 'nginx']) pairs.push([a, b]);
  pairs.push(['delegate-warm', 'undici-dispatch'], ['delegate-users', 'undici-dispatch']);
  pairs.push(
    ['delegate-mcp-call', 'bare-post'],
    ['delegate-post', 'bare-post'],
    ['delegate-mcp-call', 'delegate-post'],
    ['delegate-mcp-call-modern', 'bare-post-modern'],
    ['delegate-mcp-call-modern', 'delegate-mcp-call'],
  );
  pairs.push(
    ['delegate-list-json-mcp', 'delegate-list-json-plain'],
    ['delegate-list-sse-mcp', 'delegate-list-sse-plain'],
  );
  pairs.push(
    ['delegate-warm', 'base-warm'],
    ['delegate-users', 'base-users'],
    ['delegate-post', 'base-post'],
    ['delegate-mcp-call', 'base-mcp-call'],
  );
  pairs.push(['base-warm', 'bare-http-proxy'], ['base-users', 'bare-http-proxy'], ['base-mcp-call', 'bare-post']);
  pairs.push(
    ['bare-self-pipeline', 'bare-http-proxy'],
    ['bare-self-pipe', 'bare-http-proxy'],
    ['delegate-warm', 'bare-self-pipeline'],
    ['delegate-warm', 'delegate-warm-quiet'],
  );
  for (const [a, b] of pairs) {
    {
      if (!names.has(a) || !names.has(b)) continue;
      const cpu = ratio('measurement', a, b, (m) => m.cpuUsPerReq);
      const cpuFixed = ratio('fixed-rate', a, b, (m) => m.cpuUsPerReq);
      const rps = ratio('measurement', a, b, (m) => m.rps);
      const p99 = diff('fixed-rate', a, b, (m) => m.p99Ms);
      ratioRows.push([
        `${a} / ${b}`,
        `${cpu.med} (${cpu.min}–${cpu.max})`,
        `${cpuFixed.med}`,
        `${rps.med} (${rps.min}–${rps.max})`,
        p99,
      ]);
      summary[`${a}/${b}`] = { cpuPerReq: cpu, cpuPerReqFixedRate: cpuFixed, rps, p99AddedMsFixedRate: p99 };
    }
  }
  lines.push('\n## Ratios (median of per-round ratios, min–max over rounds)\n');
  lines.push(
    table(['pair', 'CPU/req (closed loop)', `CPU/req @${RATE}/s`, 'req/s', `p99 added ms @${RATE}/s`], ratioRows),
  );

  const get = (
    pair: string,
  ): { cpuPerReq: { med: number }; rps: { med: number }; p99AddedMsFixedRate: number } | undefined =>
    summary[pair] as { cpuPerReq: { med: number }; rps: { med: number }; p99AddedMsFixedRate: number } | undefined;
  const warmVsBare = get('delegate-warm/bare-http-proxy');
  const usersVsBare = get('delegate-users/bare-http-proxy');
  const warmVsNginx = get('delegate-warm/nginx');
  const mcpVsBare = get('delegate-mcp-call/bare-post');
  const postVsBare = get('delegate-post/bare-post');
  const modernVsBare = get('delegate-mcp-call-modern/bare-post-modern');
  const listJson = get('delegate-list-json-mcp/delegate-list-json-plain');
  const listSse = get('delegate-list-sse-mcp/delegate-list-sse-plain');
  const verdict = (ok: boolean | undefined): string => (ok === undefined ? 'n/a' : ok ? 'met' : '**missed**');
  const herdOk = extra.herd.length > 0 ? extra.herd.every((h) => h.exchangesAtAs === h.users) : undefined;
  const sim = extra.asLoad.find((l) => l.kind === 'as-load');
  const simHerd = extra.asLoad.find((l) => l.kind === 'as-load-herd');
  const mem = extra.memory.find((l) => l.kind === 'memory' && l.tokenBytes !== 0);
  const targets = [
    [
      'warm: CPU/req vs bare http-proxy',
      '≤ 0.90× (stretch 0.80×)',
      warmVsBare?.cpuPerReq.med ?? 'n/a',
      verdict(warmVsBare && warmVsBare.cpuPerReq.med <= 0.9),
    ],
    [
      'warm: req/s vs bare http-proxy',
      '≥ 1.0×',
      warmVsBare?.rps.med ?? 'n/a',
      verdict(warmVsBare && warmVsBare.rps.med >= 1.0),
    ],
    [
      `${USERS} users: CPU/req vs bare http-proxy`,
      '≤ 1.0×',
      usersVsBare?.cpuPerReq.med ?? 'n/a',
      verdict(usersVsBare && usersVsBare.cpuPerReq.med <= 1.0),
    ],
    [
      'MCP tools/call (1 KiB): CPU/req vs the same POST through bare http-proxy',
      '≤ 1.10×',
      mcpVsBare?.cpuPerReq.med ?? 'n/a',
      verdict(mcpVsBare && mcpVsBare.cpuPerReq.med <= 1.1),
    ],
    [
      'MCP 2026-07-28 tools/call (1 KiB): CPU/req vs the same POST through bare http-proxy',
      '≤ 1.10×',
      modernVsBare?.cpuPerReq.med ?? 'n/a',
      verdict(modernVsBare && modernVsBare.cpuPerReq.med <= 1.1),
    ],
    ['plain 1 KiB POST: CPU/req vs bare http-proxy (reported)', '-', postVsBare?.cpuPerReq.med ?? 'n/a', '-'],
    [
      'filtered tools/list vs unfiltered, JSON / SSE (reported)',
      '-',
      `${listJson?.cpuPerReq.med ?? 'n/a'} / ${listSse?.cpuPerReq.med ?? 'n/a'}`,
      '-',
    ],
    [
      'warm: CPU/req vs nginx',
      '≤ 3× (moonshot 2.5×)',
      warmVsNginx?.cpuPerReq.med ?? 'n/a',
      verdict(warmVsNginx && warmVsNginx.cpuPerReq.med <= 3),
    ],
    [
      `warm: p99 added @${RATE}/s`,
      '< 1 ms',
      warmVsBare?.p99AddedMsFixedRate ?? 'n/a',
      verdict(warmVsBare && warmVsBare.p99AddedMsFixedRate < 1),
    ],
    [
      `${USERS} users: p99 added @${RATE}/s`,
      '< 1 ms',
      usersVsBare?.p99AddedMsFixedRate ?? 'n/a',
      verdict(usersVsBare && usersVsBare.p99AddedMsFixedRate < 1),
    ],
    [
      'herd of 1,000 first requests (real AS)',
      '1 exchange per user',
      extra.herd.map((h) => `${h.users} user(s): ${h.exchangesAtAs}`).join('; ') || 'n/a',
      verdict(herdOk),
    ],
    [
      '10 min simulated, refresh ahead',
      '1 per key per lifetime',
      sim ? `${sim.exchanges} (expected ${sim.expected})` : 'n/a',
      verdict(sim ? sim.exchanges === sim.expected && sim.perKeyMismatches === 0 : undefined),
    ],
    [
      'herd of 1,000 (in-process)',
      '1',
      simHerd ? String(simHerd.exchanges) : 'n/a',
      verdict(simHerd ? simHerd.exchanges === 1 : undefined),
    ],
    [
      'cache memory per entry (800-byte tokens)',
      '≤ token + 256 B',
      mem ? `${mem.bytesPerEntry} B` : 'n/a',
      verdict(mem ? Number(mem.bytesPerEntry) <= Number(mem.tokenBytes) + 256 : undefined),
    ],
  ];
  lines.push('\n## Targets\n');
  lines.push(table(['target', 'wanted', 'measured', 'verdict'], targets));
  emit(summary);
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function shutdown(): Promise<void> {
  await Promise.all([...children.map((c) => c.stop()), nginx?.stop()]);
}

try {
  await main();
} finally {
  await shutdown();
}
