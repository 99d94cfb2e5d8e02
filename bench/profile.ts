/**
 * CPU profile of one proxy under load (a missed target is a finding: this says where the time went): starts the upstream,
 * the AS and the proxy with `node --cpu-prof`, drives it with the same load as bench/run.ts, stops
 * it and prints where the time went: self time by package/file and the top functions, plus the
 * inclusive time of our own (src/) functions.
 *
 *   node --import tsx bench/profile.ts [TARGET] [seconds]
 *
 * TARGET: delegate-warm (GET /, one user), delegate-users (GET /, BENCH_USERS users), bare-http-proxy,
 * bare-self-pipeline, and the MCP traffic of bench/run.ts, one user, warm cache:
 * delegate-mcp-call (1 KiB tools/call through the `mcp:` route), delegate-post (the same POST through
 * a plain route), bare-post (the same POST through the bare http-proxy forwarder),
 * delegate-list-mcp / delegate-list-plain (tools/list, filtered / passed through, JSON answer).
 *
 * The profile is taken in the proxy process with the V8 CPU profiler over the measured window only
 * (start-up and warm-up excluded); BENCH_CPU_PROF=1 instead runs the proxy under `node --cpu-prof`
 * for the whole process lifetime.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Child, cpuLayout, startChild } from './lib/children.js';
import { CALL_BODY, LIST_BODY, MCP_HEADERS, MCP_SCOPES, mcpRoute } from './lib/mcp-traffic.js';
import { round, table } from './lib/stats.js';
import { runAutocannon } from './load/autocannon.js';
import type { LoadSpec } from './load/result.js';
import { runWrk, wrkAvailable } from './load/wrk.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
}

const target = process.argv[2] ?? 'delegate-warm';
const seconds = Number(process.argv[3] ?? 10);
const users = Number(process.env.BENCH_USERS ?? 10_000);
const layout = cpuLayout();
const dir = mkdtempSync(join(tmpdir(), 'dp-profile-'));
const secretFile = join(dir, 'client-secret');
writeFileSync(secretFile, 'bench-secret\n');
const children: Child[] = [];
// The request each target sends (default GET /).
const requests: Record<string, Pick<LoadSpec, 'method' | 'path' | 'body' | 'headers'>> = {
  'delegate-mcp-call': { method: 'POST', path: '/mcp', body: CALL_BODY, headers: MCP_HEADERS },
  'delegate-post': { method: 'POST', path: '/call', body: CALL_BODY, headers: MCP_HEADERS },
  'bare-post': { method: 'POST', path: '/mcp', body: CALL_BODY, headers: MCP_HEADERS },
  'delegate-list-mcp': { method: 'POST', path: '/mcp/tools-list', body: LIST_BODY, headers: MCP_HEADERS },
  'delegate-list-plain': { method: 'POST', path: '/tools-list', body: LIST_BODY, headers: MCP_HEADERS },
};
const request = requests[target] ?? {};
const bare = target === 'bare-http-proxy' || target === 'bare-self-pipeline' || target === 'bare-post';

try {
  const rest = { layout, cpus: layout.rest };
  const upstream = await startChild('upstream', 'upstream.ts', {}, rest);
  const as = await startChild(
    'as',
    'authorization-server.ts',
    { clientId: 'agent-service', clientSecret: 'bench-secret', accessTokenTtlSeconds: 3600 },
    rest,
  );
  children.push(upstream, as);
  const file = join(dir, 'tokens.txt');
  const count = target === 'delegate-users' ? users : 1;
  await as.request('issue', {
    count,
    prefix: 'p-',
    scope: request.body === undefined ? ['bench:read'] : ['bench:read', ...MCP_SCOPES],
    expiresInSeconds: 7200,
    file,
  });
  const wholeProcess = process.env.BENCH_CPU_PROF === '1';
  const nodeFlags = wholeProcess ? ['--cpu-prof', '--cpu-prof-dir', dir] : [];
  const sut = { layout, cpus: layout.sut, nodeFlags };
  const proxy = bare
    ? await startChild(
        'bare',
        'bare-http-proxy.ts',
        { upstream: upstream.info.url, mode: target === 'bare-self-pipeline' ? 'self-pipeline' : 'plain' },
        sut,
      )
    : await startChild(
        'delegate',
        'delegate-proxy.ts',
        {
          config: {
            authorizationServer: {
              tokenEndpoint: String(as.info.tokenEndpoint),
              clientId: 'agent-service',
              clientSecretFile: secretFile,
            },
            cache: { maxTtlSeconds: 3600, refreshAheadSeconds: 30, maxEntries: users * 2 },
            routes: [
              { name: 'bench', match: { pathPrefix: '/' }, upstream: upstream.info.url, scopes: ['bench:read'] },
              mcpRoute(upstream.info.url),
            ],
            logging: { level: 'info' },
          },
        },
        sut,
      );
  const tokens = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const spec: LoadSpec =
    target === 'delegate-users'
      ? { url: proxy.info.url, connections: 16, durationS: 1, tokensFile: file }
      : { url: proxy.info.url, connections: 16, durationS: 1, token: tokens[0] as string, ...request };
  const load = (s: LoadSpec) => (wrkAvailable() ? runWrk(s, layout) : runAutocannon(s, layout));
  // Warm the cache (every user once, slowly enough for the AS), then the measured load.
  if (target === 'delegate-users') await load({ ...spec, connections: 8, durationS: Math.ceil(users / 60) });
  await load({ ...spec, durationS: 3 });
  if (!wholeProcess) await proxy.request('profileStart');
  const result = await load({ ...spec, durationS: seconds });
  if (!wholeProcess) await proxy.request('profileStop', join(dir, 'window.cpuprofile'));
  process.stdout.write(`${JSON.stringify({ kind: 'profile-load', target, ...result })}\n`);
  await proxy.stop();
  const profFile = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!profFile) throw new Error('no .cpuprofile written');
  summarize(JSON.parse(readFileSync(join(dir, profFile), 'utf8')) as Profile, join(dir, profFile), result.requests);
} finally {
  await Promise.all(children.map((c) => c.stop()));
}

function where(url: string): string {
  if (url === '') return '(native/V8)';
  if (url.startsWith('node:')) return url;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  // Our own code, compiled (dist/, what the bench runs) or from source: named src/... either way.
  const dist = url.indexOf('/dist/');
  if (dist !== -1) return `src/${url.slice(dist + '/dist/'.length)}`;
  const src = url.indexOf('/src/');
  if (src !== -1) return url.slice(src + 1);
  const bench = url.indexOf('/bench/');
  return bench !== -1 ? url.slice(bench + 1) : url;
}

function summarize(profile: Profile, file: string, requests: number): void {
  const total = profile.samples.length;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const byWhere = new Map<string, number>();
  for (const n of profile.nodes) {
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)' || name === '(program)' || name === '(garbage collector)') {
      byWhere.set(name, (byWhere.get(name) ?? 0) + n.hitCount);
      continue;
    }
    const w = where(n.callFrame.url);
    const k = `${name} ${w}:${n.callFrame.lineNumber + 1}`;
    self.set(k, (self.get(k) ?? 0) + n.hitCount);
    byWhere.set(w, (byWhere.get(w) ?? 0) + n.hitCount);
  }
  // Inclusive time of our own functions (counted once per stack even when recursive).
  const inclusive = new Map<string, number>();
  const walk = (id: number, onStack: Set<string>): number => {
    const n = byId.get(id);
    if (!n) return 0;
    let sum = n.hitCount;
    const w = where(n.callFrame.url);
    const k = w.startsWith('src/')
      ? `${n.callFrame.functionName || '(anonymous)'} ${w}:${n.callFrame.lineNumber + 1}`
      : undefined;
    const fresh = k !== undefined && !onStack.has(k);
    if (fresh) onStack.add(k);
    for (const c of n.children ?? []) sum += walk(c, onStack);
    if (fresh) {
      onStack.delete(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + sum);
    }
    return sum;
  };
  walk(profile.nodes[0]?.id ?? 1, new Set());
  const busy = total - (byWhere.get('(idle)') ?? 0);
  // Sample weights from the profile's own time deltas (µs), so µs/request is independent of the interval.
  const usPerSample = (profile.endTime - profile.startTime) / total;
  const pct = (n: number): string => `${round((n / busy) * 100, 1)}% ${round((n * usPerSample) / requests, 1)} µs/req`;
  const top = (m: Map<string, number>, n: number): [string, string][] =>
    [...m.entries()]
      .filter(([k]) => k !== '(idle)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => [k, pct(v)]);
  process.stdout.write(
    `\nprofile: ${file}\n${busy} busy samples of ${total} (${round(usPerSample, 1)} µs each); ${requests} requests; ` +
      `${round((busy * usPerSample) / requests, 1)} µs busy per request; shares are of busy time\n\n`,
  );
  process.stdout.write(`${table(['self time by package / file', 'share, µs/req'], top(byWhere, 25))}\n\n`);
  process.stdout.write(`${table(['function (self time)', 'share, µs/req'], top(self, 40))}\n\n`);
  process.stdout.write(`${table(['src/ function (inclusive)', 'share, µs/req'], top(inclusive, 30))}\n`);
}
