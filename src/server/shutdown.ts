import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
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

export interface GracefulServerOptions {
  /** True once the process drains (readiness 503): from then on no response offers keep-alive. */
  readonly draining?: () => boolean;
  /**
   * After the listener closed, how long a connection accepted just before may take to deliver its
   * first request (it is then served, with `Connection: close`). Default 1000.
   */
  readonly firstRequestMs?: number;
}

const SOCKET = Symbol('delegate-proxy.request-socket');

/** Wraps an HTTP server with in-flight tracking; attach before it starts serving. */
export function gracefulServer(server: Server, options: GracefulServerOptions = {}): GracefulServer {
  return new Tracked(server, options.draining ?? (() => false), options.firstRequestMs ?? 1_000);
}

class Tracked implements GracefulServer, InFlight {
  #count = 0;
  #closing = false;
  #waiters: Array<() => void> = [];
  #settled: Array<() => void> = [];
  /** Requests in flight per connection that has carried one. */
  readonly #active = new Map<Socket, number>();
  /** Connections that have not sent a request yet. */
  readonly #fresh = new Set<Socket>();
  /** The response class's own writeHead (set on the first request). */
  #base: ServerResponse['writeHead'] | undefined;

  constructor(
    private readonly server: Server,
    private readonly draining: () => boolean,
    private readonly firstRequestMs: number,
  ) {
    const tracked = this;
    // Decided when the headers go out, not when the request came in: a response that starts while
    // draining or closing says `Connection: close` (RFC 9112 §9.6) and Node closes the connection
    // after it, so the client never sends another request on a connection about to be closed.
    // Shared by every response (no closure per request).
    function writeHead(this: ServerResponse, ...args: Parameters<ServerResponse['writeHead']>): ServerResponse {
      if (tracked.#closing || tracked.draining()) this.shouldKeepAlive = false;
      return (tracked.#base as (...a: unknown[]) => ServerResponse).apply(this, args);
    }
    function onResponseClose(this: ServerResponse & { [SOCKET]?: Socket }): void {
      // The connection as it was when the request came (req.socket may be gone by now).
      tracked.#responseClosed(this[SOCKET] as Socket);
    }
    server.on('connection', (socket: Socket) => {
      this.#fresh.add(socket);
      socket.once('close', () => {
        this.#fresh.delete(socket);
        this.#active.delete(socket);
        this.#wake();
      });
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const socket = req.socket;
      this.#fresh.delete(socket);
      this.#active.set(socket, (this.#active.get(socket) ?? 0) + 1);
      this.#count++;
      (res as ServerResponse & { [SOCKET]?: Socket })[SOCKET] = socket;
      this.#base ??= res.writeHead;
      res.writeHead = writeHead as ServerResponse['writeHead'];
      // 'close' comes once per response: a plain listener, no once() wrapper per request.
      res.on('close', onResponseClose);
    });
  }

  get inFlight(): InFlight {
    return this;
  }

  get count(): number {
    return this.#count;
  }

  idle(): Promise<void> {
    return this.#count === 0 ? Promise.resolve() : new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  #responseClosed(socket: Socket): void {
    this.#count--;
    const left = (this.#active.get(socket) ?? 1) - 1;
    this.#active.set(socket, left);
    // A response that began before the close offered keep-alive: close its connection now that
    // it is idle, unless the client's next request already arrived on it.
    if (this.#closing && left === 0) setImmediate(() => this.#active.get(socket) === 0 && socket.destroy());
    this.#wake();
  }

  #wake(): void {
    if (this.#count === 0) {
      const w = this.#waiters;
      this.#waiters = [];
      for (const resolve of w) resolve();
    }
    if (this.#count === 0 && this.#fresh.size === 0) {
      const w = this.#settled;
      this.#settled = [];
      for (const resolve of w) resolve();
    }
  }

  #quiet(): Promise<void> {
    return this.#count === 0 && this.#fresh.size === 0
      ? Promise.resolve()
      : new Promise<void>((resolve) => this.#settled.push(resolve));
  }

  async close(graceMs: number): Promise<number> {
    const { server } = this;
    this.#closing = true;
    const closed = new Promise<void>((resolve) => {
      if (!server.listening) {
        resolve();
        return;
      }
      // server.close() would also destroy connections accepted a moment ago whose first request
      // is still on its way (ECONNRESET for a request the client already sent): close only the
      // listener here; idle connections are handled below.
      const closeIdle = server.closeIdleConnections;
      server.closeIdleConnections = () => {};
      server.close(() => resolve());
      server.closeIdleConnections = closeIdle;
    });
    // Idle keep-alive connections already had their answer: close them between requests.
    for (const [socket, n] of this.#active) if (n === 0) socket.destroy();
    // Connections that have not sent a request yet get a moment to do so.
    for (const socket of this.#fresh) {
      setTimeout(
        () => {
          if (!this.#fresh.delete(socket)) return;
          // An upgraded connection (WebSocket) has left HTTP (Node drops its parser): not cut here.
          if ((socket as Socket & { parser?: unknown }).parser) socket.destroy();
          else this.#wake();
        },
        Math.min(this.firstRequestMs, graceMs),
      ).unref();
    }
    const timeout = new AbortController();
    const finished = await Promise.race([
      this.#quiet().then(() => true),
      delay(graceMs, false, { signal: timeout.signal }).catch(() => false),
    ]);
    timeout.abort();
    const cut = finished ? 0 : this.#count;
    server.closeAllConnections();
    await closed;
    return cut;
  }
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
 * The SIGTERM sequence (docs/operations.md): readiness 503 at once; keep accepting for the drain
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
