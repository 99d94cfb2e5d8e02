/**
 * The real proxy alone in its own process, for resource measurements that must not see the test's
 * clients and servers (open fds, heap after a full collection). Driven over IPC:
 * {type:'start', config} -> {type:'started', url}; {type:'sample', ports} -> {type:'sample', ...}; {type:'snapshot', path} -> {type:'snapshot'}; {type:'close'}.
 * Start with `fork(path, { execArgv: ['--import', 'tsx', '--expose-gc'] })`.
 */
import { readdirSync } from 'node:fs';
import { writeHeapSnapshot } from 'node:v8';
import { createProxy, type DelegateProxy } from '../../src/app.js';
import { resolveConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/observability/logger.js';
import { socketsOn } from './proc-sockets.js';

let proxy: DelegateProxy | undefined;
const gc = (globalThis as { gc?: () => void }).gc;

async function sample(ports: readonly number[]): Promise<Record<string, unknown>> {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setImmediate(r));
  }
  return {
    type: 'sample',
    fds: readdirSync('/proc/self/fd').length,
    pathSockets: socketsOn(new Set(ports)),
    heapUsed: process.memoryUsage().heapUsed,
    timeouts: process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length,
    websockets: proxy?.websockets.count ?? 0,
    gc: gc !== undefined,
  };
}

process.on('message', (msg: { type: string; config?: Record<string, unknown>; ports?: number[]; path?: string }) => {
  void (async () => {
    if (msg.type === 'start') {
      // Warnings and errors only: a line per connection would grow the measured heap's garbage.
      proxy = createProxy(resolveConfig(msg.config, {}), {
        logger: createLogger({ level: 'warn' }),
        listen: { host: '127.0.0.1', port: 0 },
        admin: { host: '127.0.0.1', port: 0 },
      });
      const started = await proxy.start();
      process.send?.({ type: 'started', url: started.url });
    } else if (msg.type === 'sample') {
      process.send?.(await sample(msg.ports ?? []));
    } else if (msg.type === 'snapshot') {
      // undici drops cleared timers (FastTimer, with a WeakRef per connect) on its 500 ms tick, not at
      // once: give it three ticks so the census counts only what is really held.
      await new Promise((r) => setTimeout(r, 1_500));
      gc?.();
      writeHeapSnapshot(msg.path);
      process.send?.({ type: 'snapshot' });
    } else if (msg.type === 'close') {
      await proxy?.close();
      process.exit(0);
    }
  })();
});
