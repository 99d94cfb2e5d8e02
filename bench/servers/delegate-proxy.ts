import { Registry } from 'prom-client';
import { createLogger, createProxy, resolveConfig } from '../lib/dist.js';
import { childOptions, serve } from './child.js';

// The real proxy built from a raw config through the real validation. Logs go through the real
// logger at the configured level (info: one access line per request) to its default destination,
// stdout, which the bench points at /dev/null (bench/lib/children.ts): the cost of logging is
// measured as the proxy pays it, and the pipe back to the orchestrator is not.
const { config } = childOptions<{ config: Record<string, unknown> }>();
const resolved = resolveConfig(config, {});
const proxy = createProxy(resolved, {
  logger: createLogger({ level: resolved.logging.level }),
  registry: new Registry(),
  listen: { host: '127.0.0.1', port: 0 },
  admin: { host: '127.0.0.1', port: 0 },
});
const started = await proxy.start();
serve({ url: started.url, adminUrl: started.adminUrl }, { cacheSize: () => proxy.tokens.cache.size }, () =>
  proxy.close(),
);
