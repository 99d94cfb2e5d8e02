import type { Server } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';

/** Counts requests whose response has not ended yet (long SSE streams included). */
export interface InFlight {
  readonly count: number;
  /** Resolves when no request is in flight. */
  idle(): Promise<void>;
}

export interface GracefulServer {
  readonly inFlight: InFlight;
  /**
   * Stops accepting connections, lets in-flight requests finish for up to `graceMs`, then cuts the
   * rest. Keep-alive connections are closed as soon as their current response ends, not after the
   * keep-alive timeout. Resolves with the number of requests that were cut.
   */
  close(graceMs: number): Promise<number>;
}

/** Wraps an HTTP server with in-flight tracking; attach before it starts serving. */
export function gracefulServer(server: Server): GracefulServer {
  let count = 0;
  let closing = false;
  let waiters: Array<() => void> = [];

  server.on('request', (_req, res) => {
    count++;
    res.once('close', () => {
      count--;
      // Once closing, a keep-alive connection is idle from here on: close it instead of waiting for
      // its timeout (Node's server.close() only closes the connections idle at the time of the call).
      if (closing) setImmediate(() => server.closeIdleConnections());
      if (count === 0) {
        const w = waiters;
        waiters = [];
        for (const resolve of w) resolve();
      }
    });
  });

  const inFlight: InFlight = {
    get count() {
      return count;
    },
    idle: () => (count === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
  };

  return {
    inFlight,
    async close(graceMs) {
      closing = true;
      const closed = new Promise<void>((resolve) => {
        if (!server.listening) resolve();
        else server.close(() => resolve());
      });
      server.closeIdleConnections();
      const timeout = new AbortController();
      const finished = await Promise.race([
        inFlight.idle().then(() => true),
        delay(graceMs, false, { signal: timeout.signal }).catch(() => false),
      ]);
      timeout.abort();
      const cut = finished ? 0 : count;
      server.closeAllConnections();
      await closed;
      return cut;
    },
  };
}

export interface ShutdownSettings {
  readonly drainDelaySeconds: number;
  readonly gracePeriodSeconds: number;
}

export interface Drainable {
  readonly readiness: { drain(): void };
  readonly logger: Logger;
  readonly inFlight: InFlight;
  close(graceMs: number): Promise<void>;
}

/**
 * The SIGTERM sequence (README "Operations"): readiness 503 at once; keep accepting for the drain
 * delay so Kubernetes can take the pod out of its endpoints first; then stop accepting and give
 * in-flight requests (SSE streams included) the grace period; then close everything.
 */
export async function drainAndClose(proxy: Drainable, settings: ShutdownSettings, signal: string): Promise<void> {
  const { drainDelaySeconds, gracePeriodSeconds } = settings;
  proxy.readiness.drain();
  proxy.logger.info({ signal, drainDelaySeconds, gracePeriodSeconds }, 'shutting down: draining (readiness 503)');
  if (drainDelaySeconds > 0) await delay(drainDelaySeconds * 1000);
  proxy.logger.info({ inFlight: proxy.inFlight.count }, 'shutting down: no longer accepting connections');
  await proxy.close(gracePeriodSeconds * 1000);
  proxy.logger.info('shut down');
}
