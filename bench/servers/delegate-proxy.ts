import { pino } from 'pino';
import { Registry } from 'prom-client';
import { childOptions, serve } from './child.js';

// The compiled dist/ (what `delegate-proxy` runs; `npm run bench` builds it first), not src/ through
// tsx: tsx's transform wraps every closure in a naming helper that costs several µs per request.
type App = typeof import('../../src/app.js');
type Load = typeof import('../../src/config/load.js');
type Log = typeof import('../../src/observability/logger.js');
const dist = (file: string) => new URL(`../../dist/${file}`, import.meta.url).href;
const { createProxy } = (await import(dist('app.js'))) as App;
const { resolveConfig } = (await import(dist('config/load.js'))) as Load;
const { createLogger } = (await import(dist('observability/logger.js'))) as Log;

// The real proxy built from a raw config through the real validation. Logs go through the real
// logger at the configured level (info: one access line per request) into /dev/null with the same
// asynchronous writes as the default stdout destination (src/observability/logger.ts), so the cost
// of logging is measured and the pipe back to the orchestrator is not.
const { config } = childOptions<{ config: Record<string, unknown> }>();
const resolved = resolveConfig(config, {});
const proxy = createProxy(resolved, {
  logger: createLogger({ level: resolved.logging.level, destination: pino.destination({ dest: '/dev/null', sync: false }) }),
  registry: new Registry(),
  listen: { host: '127.0.0.1', port: 0 },
  admin: { host: '127.0.0.1', port: 0 },
});
const started = await proxy.start();
serve({ url: started.url, adminUrl: started.adminUrl }, { cacheSize: () => proxy.tokens.cache.size }, () => proxy.close());
