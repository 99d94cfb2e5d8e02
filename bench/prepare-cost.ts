/**
 * CPU cost of the request pipeline's steps 2-6 (`prepare`, src/proxy/prepare.ts) on a warm cache, in
 * process: a plain route and an MCP GET, one user on a keep-alive connection, CPU nanoseconds
 * per request (median of rounds), this build and other builds side by side, interleaved round by round.
 *
 *   npm run build && node --import tsx bench/prepare-cost.ts [DIST_DIR ...]   (default: dist)
 *
 * Each directory is a compiled `dist/`; another tree's build needs this
 * tree's node_modules next to it (a symlink).
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { median, round } from './lib/stats.js';

type Prepare = typeof import('../src/proxy/prepare.js');
type Reload = typeof import('../src/server/reload.js');
type Load = typeof import('../src/config/load.js');
type Tokens = typeof import('../src/auth/token-service.js');
type Metrics = typeof import('../src/observability/metrics.js');
type RouteMetrics = typeof import('../src/observability/route-metrics.js');
type Context = typeof import('../src/pipeline/context.js');
type Policies = typeof import('../src/mcp/policies.js');

const N = 50_000;
const ROUNDS = 21;
const TOKEN = `eyJhbGciOiJub25lIn0.${Buffer.from(JSON.stringify({ sub: 'u', exp: 4_000_000_000 })).toString('base64url')}.`;

async function load(dir: string) {
  const root = pathToFileURL(`${resolve(dir)}/`);
  const m = async <T>(file: string) => (await import(new URL(file, root).href)) as T;
  const { prepare } = await m<Prepare>('proxy/prepare.js');
  const { createRuntime } = await m<Reload>('server/reload.js');
  const { resolveConfig } = await m<Load>('config/load.js');
  const { TokenService } = await m<Tokens>('auth/token-service.js');
  const { createMetrics } = await m<Metrics>('observability/metrics.js');
  const { createRouteMetrics } = await m<RouteMetrics>('observability/route-metrics.js');
  const { createContext } = await m<Context>('pipeline/context.js');
  const { McpPolicies } = await m<Policies>('mcp/policies.js');
  const config = resolveConfig({
    authorizationServer: { tokenEndpoint: 'http://127.0.0.1:1/token', clientId: 'x', clientAuth: 'none' },
    routes: [
      { name: 'plain', match: { pathPrefix: '/r' }, upstream: 'http://127.0.0.1:2', scopes: ['a'] },
      { name: 'mcp', match: { pathPrefix: '/mcp' }, upstream: 'http://127.0.0.1:2', mcp: {} },
    ],
  });
  const runtime = createRuntime(config);
  const metrics = createMetrics({
    registry: new (await import('prom-client')).Registry(),
    version: 'b',
    defaultMetrics: false,
  });
  const routeMetrics = createRouteMetrics(metrics);
  let n = 0;
  const client = {
    exchange: async (r: { scopes: readonly string[] }) => ({
      accessToken: `d-${++n}`,
      issuedTokenType: 'urn:ietf:params:oauth:token-type:access_token',
      tokenType: 'Bearer',
      expiresIn: 3600,
      scopes: [...r.scopes],
    }),
  };
  const tokens = new TokenService({
    client: client as never,
    cache: { refreshAheadSeconds: 30, maxTtlSeconds: 3600, maxEntries: 100, clockSkewSeconds: 5 },
    subjectTokenType: 'urn:ietf:params:oauth:token-type:access_token',
    clock: { now: () => Date.now() },
    metrics,
    routeMetrics,
  });
  const logger = (await import('pino')).pino({ level: 'silent' });
  const deps = {
    runtime: () => runtime,
    tokens,
    metrics,
    logger,
    clock: { now: () => Date.now() },
    mcpPolicies: new McpPolicies(metrics, 100),
    routeMetrics,
  };
  const socket = {};
  const res = {};
  const request = (url: string) => {
    const req = {
      method: 'GET',
      url,
      headers: { host: 'proxy', authorization: `Bearer ${TOKEN}`, accept: 'text/event-stream' },
      rawHeaders: ['host', 'proxy', 'authorization', `Bearer ${TOKEN}`, 'accept', 'text/event-stream'],
      socket,
    };
    return createContext(req as never, res as never, logger);
  };
  const run = (url: string) => prepare(request(url), deps as never);
  for (const url of ['/r/a', '/mcp']) {
    const first = run(url);
    if (!(first instanceof Promise)) throw new Error('expected the first request to exchange');
    await first;
    if (run(url) instanceof Promise) throw new Error('expected a warm hit without a promise');
  }
  return run;
}

const dirs = process.argv.length > 2 ? process.argv.slice(2) : ['dist'];
const runs = await Promise.all(dirs.map(load));
for (const url of ['/r/a', '/mcp']) {
  const ns: number[][] = dirs.map(() => []);
  for (let r = 0; r < ROUNDS; r++) {
    runs.forEach((run, i) => {
      // CPU time, not wall time: other processes on the machine do not count.
      const t = process.cpuUsage();
      for (let k = 0; k < N; k++) run(url);
      const used = process.cpuUsage(t);
      if (r > 0) ns[i]?.push(((used.user + used.system) * 1000) / N); // round 0 is warm-up
    });
  }
  dirs.forEach((dir, i) => {
    process.stdout.write(
      `${JSON.stringify({ kind: 'prepare-cost', build: dir, path: url, nsPerRequest: round(median(ns[i] ?? []), 0), rounds: ns[i]?.map((x) => round(x, 0)) })}\n`,
    );
  });
}
