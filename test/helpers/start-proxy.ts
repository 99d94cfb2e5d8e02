import { Registry } from 'prom-client';
import { createProxy, type DelegateProxy, type ProxyDeps } from '../../src/app.js';
import { resolveConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/observability/logger.js';
import type { Clock } from '../../src/pipeline/clock.js';
import { createLogSink, type LogSink } from './log-sink.js';
import { CLIENT_ID, type TestAuthorizationServer } from './start-as.js';

export interface TestProxy {
  readonly url: string;
  readonly adminUrl: string;
  readonly proxy: DelegateProxy;
  readonly logs: LogSink;
  readonly registry: Registry;
  close(): Promise<void>;
}

export interface StartProxyOptions {
  /** Sets authorizationServer.tokenEndpoint/clientId/clientSecretFile from a test AS. */
  readonly as?: TestAuthorizationServer;
  /** Raw config (as in YAML); merged over the AS settings. */
  readonly config: Record<string, unknown>;
  readonly clock?: Clock;
  readonly env?: Record<string, string>;
  /** Further dependencies (timers, dispatcher). */
  readonly deps?: Partial<ProxyDeps>;
}

/** The real proxy, from a raw config through the real validation, on port 0 with a log sink. */
export async function startProxy(options: StartProxyOptions): Promise<TestProxy> {
  const raw: Record<string, unknown> = { ...options.config };
  if (options.as) {
    raw.authorizationServer = {
      tokenEndpoint: options.as.tokenEndpoint,
      clientId: CLIENT_ID,
      clientSecretFile: options.as.secretFile,
      ...(options.config.authorizationServer as Record<string, unknown> | undefined),
    };
  }
  const config = resolveConfig(raw, options.env ?? {});
  const logs = createLogSink();
  const registry = new Registry();
  const proxy = createProxy(config, {
    logger: createLogger({ level: 'debug', destination: logs }),
    registry,
    ...(options.clock ? { clock: options.clock } : {}),
    ...options.deps,
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
  });
  const started = await proxy.start();
  return { ...started, proxy, logs, registry, close: () => proxy.close() };
}

/** A clock the test moves by hand. */
export function manualClock(start = Date.now()): Clock & { advance(ms: number): void; set(ms: number): void } {
  let now = start;
  return {
    now: () => now,
    advance(ms) {
      now += ms;
    },
    set(ms) {
      now = ms;
    },
  };
}
