import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CpuLayout, pinned } from '../lib/children.js';
import type { LoadResult, LoadSpec } from './result.js';

export function wrkAvailable(): boolean {
  const r = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
  return r.error === undefined;
}

// Prints the summary as one JSON line (wrk's latency unit is microseconds).
const REPORT = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50Us":%d,"p99Us":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`;

function luaHeaders(host: string, spec: LoadSpec, auth: string | undefined): string {
  const entries = [`["Host"] = ${JSON.stringify(host)}`];
  for (const [k, v] of Object.entries(spec.headers ?? {}))
    entries.push(`[${JSON.stringify(k)}] = ${JSON.stringify(v)}`);
  if (auth !== undefined) entries.push(`["Authorization"] = ${auth}`);
  return `{ ${entries.join(', ')} }`;
}

function luaBody(spec: LoadSpec): string {
  return spec.body === undefined ? 'nil' : JSON.stringify(spec.body);
}

// One fixed request (method, path, headers, body), formatted once.
function fixed(spec: LoadSpec, host: string): string {
  const auth = spec.token === undefined ? undefined : JSON.stringify(`Bearer ${spec.token}`);
  return `
local req = nil
init = function(args)
  req = wrk.format(${JSON.stringify(spec.method ?? 'GET')}, ${JSON.stringify(spec.path ?? '/')}, ${luaHeaders(host, spec, auth)}, ${luaBody(spec)})
end
request = function()
  return req
end
`;
}

// Pre-formats one request per token at start-up; request() only picks the next one.
function rotation(tokensFile: string, host: string, spec: LoadSpec): string {
  return `
local reqs = {}
local n = 0
local i = 0
init = function(args)
  for line in io.lines(${JSON.stringify(tokensFile)}) do
    if line ~= "" then
      n = n + 1
      reqs[n] = wrk.format(${JSON.stringify(spec.method ?? 'GET')}, ${JSON.stringify(spec.path ?? '/')}, ${luaHeaders(host, spec, '"Bearer " .. line')}, ${luaBody(spec)})
    end
  end
end
request = function()
  i = i % n + 1
  return reqs[i]
end
`;
}

let scriptDir: string | undefined;
let scripts = 0;

export async function runWrk(spec: LoadSpec, layout: CpuLayout): Promise<LoadResult> {
  if (spec.rate !== undefined) throw new Error('wrk has no fixed-rate mode; use autocannon');
  scriptDir ??= mkdtempSync(join(tmpdir(), 'dp-bench-wrk-'));
  const script = join(scriptDir, `run-${++scripts}.lua`);
  const host = new URL(spec.url).host;
  writeFileSync(script, (spec.tokensFile ? rotation(spec.tokensFile, host, spec) : fixed(spec, host)) + REPORT);
  const args = [
    '-t1',
    `-c${spec.connections}`,
    `-d${spec.durationS}s`,
    '--timeout',
    '5s',
    '-s',
    script,
    `${spec.url}/`,
  ];
  const [cmd, argv] = pinned(layout, layout.rest, 'wrk', args);
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (c: Buffer) => {
      text += c.toString('utf8');
    });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk exited with ${code}: ${text}`))));
  });
  const line = out.split('\n').find((l) => l.startsWith('WRK_JSON '));
  if (!line) throw new Error(`wrk printed no summary: ${out}`);
  const r = JSON.parse(line.slice('WRK_JSON '.length)) as Record<string, number>;
  const n = (k: string): number => r[k] ?? 0;
  const durationS = n('durationUs') / 1e6;
  return {
    tool: 'wrk',
    requests: n('requests'),
    durationS,
    rps: n('requests') / durationS,
    p50Ms: n('p50Us') / 1000,
    p99Ms: n('p99Us') / 1000,
    errors: n('connect') + n('read') + n('write') + n('timeout'),
    non2xx: n('status'),
  };
}
