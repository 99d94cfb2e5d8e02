import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import type { LoadResult, LoadSpec } from './result.js';

// Runs in its own process so the load never shares an event loop with what it measures.
// autocannon's own histogram has 1 ms resolution: latencies are taken from its per-response
// event (hrtime, fractional ms) instead.
const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;
const tokens = spec.tokensFile
  ? readFileSync(spec.tokensFile, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((t) => `Bearer ${t}`)
  : [];
let next = 0;
let latencies = new Float64Array(1 << 16);
let count = 0;
let non2xx = 0;

const options: autocannon.Options = {
  url: spec.url + (spec.path ?? '/'),
  connections: spec.connections,
  ...(spec.method === undefined ? {} : { method: spec.method as autocannon.Request['method'] }),
  ...(spec.body === undefined ? {} : { body: spec.body }),
  duration: spec.durationS,
  timeout: 5,
  ...(spec.rate === undefined ? {} : { overallRate: spec.rate }),
  headers: { ...spec.headers, ...(spec.token === undefined ? {} : { authorization: `Bearer ${spec.token}` }) },
  ...(tokens.length === 0
    ? {}
    : {
        requests: [
          {
            setupRequest: (req: autocannon.Request) => {
              const authorization = tokens[next] as string;
              next = (next + 1) % tokens.length;
              return { ...req, headers: { ...req.headers, authorization } };
            },
          },
        ],
      }),
};

const instance = autocannon(options, (err, result) => {
  if (err) {
    process.stderr.write(`autocannon: ${String(err)}\n`);
    process.exit(1);
  }
  const sorted = latencies.subarray(0, count).sort();
  const pct = (p: number): number => sorted[Math.min(count - 1, Math.floor((p / 100) * count))] ?? 0;
  const durationS = result.duration;
  const out: LoadResult = {
    tool: 'autocannon',
    requests: count,
    durationS,
    rps: count / durationS,
    p50Ms: pct(50),
    p99Ms: pct(99),
    errors: result.errors + result.timeouts,
    non2xx,
  };
  process.stdout.write(`AUTOCANNON_JSON ${JSON.stringify(out)}\n`);
});
instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
  if (statusCode < 200 || statusCode >= 400) non2xx++;
  if (count === latencies.length) {
    const grown = new Float64Array(latencies.length * 2);
    grown.set(latencies);
    latencies = grown;
  }
  latencies[count++] = responseTime;
});
