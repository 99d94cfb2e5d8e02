import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

// The compiled dist/ (what `delegate-proxy` runs; `npm run bench` and `npm run soak` build it first),
// not src/ through tsx: tsx's transform wraps every closure in a naming helper that costs several µs
// per request.
type App = typeof import('../../src/app.js');
type Load = typeof import('../../src/config/load.js');
type Log = typeof import('../../src/observability/logger.js');

// BENCH_DIST: another build to run instead (bench/run.ts's baseline, BENCH_BASELINE_DIST).
const root = process.env.BENCH_DIST
  ? pathToFileURL(`${resolve(process.env.BENCH_DIST)}/`)
  : new URL('../../dist/', import.meta.url);
const dist = (file: string) => new URL(file, root).href;

export const { createProxy } = (await import(dist('app.js'))) as App;
export const { resolveConfig } = (await import(dist('config/load.js'))) as Load;
export const { createLogger } = (await import(dist('observability/logger.js'))) as Log;
