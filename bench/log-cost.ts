// Per-line cost of the access log under different pino set-ups (node --import tsx bench/log-cost.ts).
import { pino } from 'pino';
import { createAccessLog } from '../src/observability/access-line.js';
import { REDACT_PATHS } from '../src/observability/logger.js';

const line = {
  reqId: '5d5d9ae3-0fca-4a0b-b4d3-7a2b4f150abb',
  route: 'docs',
  access: true,
  method: 'GET',
  path: '/docs/1',
  status: 200,
  upstreamStatus: 200,
  durationMs: 1.234,
  cache: 'hit',
  sub: 'alice',
};

function measure(name: string, logger: pino.Logger, n = 200_000): void {
  for (let i = 0; i < 20_000; i++) logger.info(line, 'request');
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) logger.info(line, 'request');
  const ns = Number(process.hrtime.bigint() - t0) / n;
  console.log(JSON.stringify({ kind: 'log-cost', name, nsPerCall: Math.round(ns) }));
}

const base = {
  base: { service: 'delegate-proxy' },
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: (label: string) => ({ level: label }) },
};
const sync = () => pino.destination({ dest: '/dev/null', sync: true });
const async = () => pino.destination({ dest: '/dev/null', sync: false });
measure('sync, all redact paths', pino({ ...base, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, sync()));
measure('sync, no redaction', pino(base, sync()));
measure('async, all redact paths', pino({ ...base, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, async()));
measure('async, no redaction', pino(base, async()));
measure(
  'async, top-level redact paths only',
  pino({ ...base, redact: { paths: REDACT_PATHS.filter((p) => !p.startsWith('*')), censor: '[redacted]' } }, async()),
);
const full = pino({ ...base, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, async());
measure('async, child with redact: [] (access logger)', full.child({}, { redact: [] }));

// The access line as the proxy writes it now (src/observability/access-line.ts): hand-serialised
// into the same logger's stream.
{
  const access = createAccessLog(full);
  const fields = { ...line, extra: undefined, aborted: false };
  for (let i = 0; i < 20_000; i++) access.write(fields);
  const n = 200_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) access.write(fields);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  console.log(
    JSON.stringify({
      kind: 'log-cost',
      name: 'async, hand-serialised access line (createAccessLog)',
      nsPerCall: Math.round(ns),
    }),
  );
}
