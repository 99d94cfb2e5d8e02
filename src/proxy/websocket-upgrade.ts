import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { ProxyError } from '../errors.js';
import { ServerResponse } from '../http/node-http.js';
import type { WebSocketOutcome } from '../observability/metrics.js';
import { createContext } from '../pipeline/context.js';
import { sendError } from './error-response.js';
import { buildUpstreamHeaders } from './headers.js';
import type { OpenStreams } from './open-streams.js';
import {
  type AnyStage,
  type PipelineDeps,
  type Prepared,
  prepare,
  refreshToken,
  STEPS,
  step,
  takeSubject,
  withStep,
} from './prepare.js';
import { planRetry } from './retry.js';
import { checkUpgrade, isWebSocketUpgrade, websocketLifetime } from './websocket-checks.js';
import { type HandshakeResult, upstreamHandshake } from './websocket-handshake.js';
import { endSocket, handshakeHeaders, relayRefusal, switchingProtocols } from './websocket-messages.js';
import { type ClosedBy, type Relay, relay } from './websocket-relay.js';

interface WebSocketDeps extends PipelineDeps {
  /** Dispatcher for upstream handshakes (its pools only ever hold a socket until it is upgraded). */
  readonly dispatcher: Dispatcher;
  /** Open long-lived responses (docs/revocation.md "Open streams"): lifetime limits and revocation. */
  readonly streams: OpenStreams;
}

export interface WebSocketUpgrades {
  /** The agent server's `'upgrade'` listener. */
  handle(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Upgrade sockets not closed yet (handshakes in progress and open connections). */
  readonly count: number;
  /**
   * Refuses new upgrades (503), lets open connections run for up to `graceMs`, then closes them
   * (close frame 1001 where possible) and cuts the rest. Resolves with the number closed by it.
   */
  close(graceMs: number): Promise<number>;
}

/**
 * A request's steps 2-6 (prepare.ts) with the upgrade's own checks once the user token is out of the
 * request (step 3) and before anything waits: the route allows WebSockets, no body, no copy of the
 * user token left in the request.
 */
const UPGRADE_STEPS = withStep(STEPS, step(checkUpgrade), step(takeSubject));

/** After the proxy starts a close, the peers get this long to answer before their sockets are cut. */
const LINGER_MS = 2_000;

interface Live {
  relay?: Relay;
  readonly socket: Duplex;
  readonly abort: AbortController;
}

/**
 * The WebSocket upgrade path (docs/websocket.md): the same pipeline as a request up to the token
 * (prepare.ts), then the upstream handshake with the delegated token, then a byte relay. Refusals
 * before the 101 are ordinary HTTP responses with the same JSON bodies and challenges as requests.
 */
export function createWebSocketUpgrades(
  pipeline: PipelineDeps,
  dispatcher: Dispatcher,
  streams: OpenStreams,
): WebSocketUpgrades {
  return new Upgrades({ ...pipeline, dispatcher, streams });
}

class Upgrades implements WebSocketUpgrades {
  readonly #live = new Set<Live>();
  #closing = false;
  #emptied: (() => void) | undefined;

  constructor(private readonly deps: WebSocketDeps) {}

  get count(): number {
    return this.#live.size;
  }

  #forget(entry: Live): void {
    if (!this.#live.delete(entry)) return;
    if (this.#live.size === 0) this.#emptied?.();
  }

  /** The agent server's `'upgrade'` listener (an arrow: it is passed as a listener). */
  readonly handle = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const { deps } = this;
    const entry: Live = { socket, abort: new AbortController() };
    this.#live.add(entry);
    // A response bound to the raw socket: refusals are written exactly as on the HTTP path, and its
    // 'close' (socket gone) is what a held step-up approval listens to.
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as never);
    const ctx = createContext(req, res, deps.logger);
    socket.on('error', () => socket.destroy());
    const outcome: { value?: 'refused' | 'upstream_error' } = {};
    socket.once('close', () => {
      entry.abort.abort();
      if (entry.relay !== undefined) return; // the relay's end writes its line and forgets the entry
      this.#forget(entry);
      // Refused or relayed before any 101; with no outcome the agent left during the handshake.
      const closedBy: ClosedBy =
        outcome.value === undefined ? 'client' : outcome.value === 'upstream_error' ? 'upstream' : 'proxy';
      this.#accessLine(ctx, res.headersSent ? res.statusCode : undefined, { closedBy });
    });
    const settle = (value: 'refused' | 'upstream_error'): void => {
      outcome.value = value;
      deps.metrics.websocketConnectionsTotal.inc({ route: routeOf(ctx), outcome: value });
    };
    if (this.#closing) {
      settle('refused');
      refuse(ctx, new ProxyError('temporarily_unavailable', 'the proxy is shutting down', { retryAfterSeconds: 1 }));
      return;
    }
    this.#open(ctx, entry, head)
      .then((result) => {
        if (result === 'upstream_error') settle(result);
      })
      .catch((err: unknown) => {
        if (entry.abort.signal.aborted) return; // the agent left: nothing to answer, nothing refused
        const error = asProxyError(err);
        settle(error.upstream ? 'upstream_error' : 'refused');
        refuse(ctx, error.error);
      });
  };

  async #open(context: AnyStage, entry: Live, clientHead: Buffer): Promise<WebSocketOutcome | 'gone'> {
    const { deps } = this;
    const { req } = context;
    // Node < 24.9 has no shouldUpgradeCallback: other upgrades (h2c...) arrive here too.
    if (!isWebSocketUpgrade(req)) throw new ProxyError('invalid_request', 'only WebSocket upgrades are supported');
    const ctx = await prepare(context, deps, UPGRADE_STEPS); // 2-6, with the upgrade's checks
    const { route } = ctx;
    for (let attempt = 1; ; attempt++) {
      if (entry.abort.signal.aborted) return 'gone';
      // Fresh per attempt (the request is never changed): a retry carries the token it was retried for.
      const upstreamHeaders = buildUpstreamHeaders(req.headers, {
        clientAddress: req.socket.remoteAddress,
        host: req.headers.host,
        requestId: ctx.id,
        accessToken: ctx.token.token.accessToken,
      });
      let result: HandshakeResult;
      try {
        result = await upstreamHandshake(deps.dispatcher, {
          upstream: route.upstream,
          path: ctx.forwardPath,
          headers: handshakeHeaders(upstreamHeaders),
          timeoutMs: route.timeoutMs,
          signal: entry.abort.signal,
        });
      } catch (err) {
        throw new UpstreamFailure(err);
      }
      if (result.kind === 'upgraded') {
        if (entry.socket.destroyed) {
          result.socket.destroy();
          return 'gone';
        }
        this.#startRelay(ctx, entry, result, clientHead);
        return 'opened';
      }
      ctx.upstreamStatus = result.status;
      const plan =
        attempt === 1
          ? planRetry(
              ctx,
              { status: result.status, headers: result.headers },
              { refreshToken: (c) => refreshToken(c, deps), stepUp: deps.stepUp },
            )
          : undefined;
      if (plan === undefined) {
        relayRefusal(ctx, result);
        return 'upstream_error';
      }
      ctx.log.info({ upstreamStatus: result.status, reason: plan.reason }, 'retrying WebSocket handshake once');
      await plan.prepare();
    }
  }

  #startRelay(
    ctx: Prepared,
    entry: Live,
    result: Extract<HandshakeResult, { kind: 'upgraded' }>,
    clientHead: Buffer,
  ): void {
    const { deps } = this;
    const { route } = ctx;
    const { socket } = entry;
    ctx.res.detachSocket(socket as never);
    ctx.upstreamStatus = 101;
    socket.write(switchingProtocols(result.headers, ctx.id));
    deps.metrics.websocketConnections.inc({ route: route.name });
    deps.metrics.websocketConnectionsTotal.inc({ route: route.name, outcome: 'opened' });
    const openedAt = performance.now();
    const lifetime = websocketLifetime(ctx, deps.clock);
    const opened = relay(socket, result.socket, {
      clientHead,
      lingerMs: LINGER_MS,
      onEnd: (end) => {
        tracked?.ended();
        this.#forget(entry);
        deps.metrics.websocketConnections.dec({ route: route.name });
        this.#accessLine(ctx, 101, {
          closedBy: end.closedBy,
          closeReason: end.reason,
          openMs: Math.round(performance.now() - openedAt),
          bytesFromClient: end.bytesFromClient,
          bytesFromUpstream: end.bytesFromUpstream,
          cut: end.cut || undefined,
        });
      },
    });
    entry.relay = opened;
    const tracked = deps.streams.open({
      kind: 'websocket',
      route: route.name,
      subject: ctx.subject,
      lifetimeMs: lifetime.ms,
      lifetimeReason: lifetime.reason,
      // Token expiry and a configured limit close alike (1008 "connection lifetime exceeded").
      closer: { closeStream: (reason) => opened.close(reason === 'expired' ? 'max_lifetime' : reason) },
    });
  }

  /** One line per upgrade when it is over (docs/websocket.md); fixed fields, never a credential. */
  #accessLine(ctx: AnyStage, status: number | undefined, extra: Record<string, unknown>): void {
    this.deps.logger.info(
      {
        reqId: ctx.id,
        route: ctx.route?.name,
        access: true,
        websocket: true,
        path: ctx.forwardPath?.split('?')[0],
        status,
        upstreamStatus: ctx.upstreamStatus,
        durationMs: Math.round((performance.now() - ctx.startedAt) * 1e3) / 1e3,
        cache: ctx.token?.result,
        sub: ctx.subject?.sub,
        ...extra,
      },
      'websocket',
    );
  }

  async close(graceMs: number): Promise<number> {
    const live = this.#live;
    this.#closing = true;
    if (live.size > 0) {
      const idle = new Promise<void>((resolve) => {
        this.#emptied = resolve;
      });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([idle, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
    }
    const cut = live.size;
    if (cut === 0) return 0;
    const idle = new Promise<void>((resolve) => {
      this.#emptied = resolve;
    });
    for (const entry of live) {
      entry.abort.abort();
      if (entry.relay) entry.relay.close('shutdown');
      else entry.socket.destroy();
    }
    // The close frames get LINGER_MS to be answered; the relay cuts the sockets after that.
    await idle;
    return cut;
  }
}

function refuse(ctx: AnyStage, error: ProxyError): void {
  const fields = { code: error.code, status: error.status, detail: error.detail };
  if (error.status >= 500) ctx.log.error({ ...fields, err: error.cause }, 'WebSocket upgrade failed');
  else ctx.log.info(fields, 'WebSocket upgrade refused');
  if (ctx.res.socket === null || ctx.res.socket.destroyed) return;
  ctx.res.once('finish', () => endSocket(ctx.res));
  sendError(ctx.res, error, { requestId: ctx.id, hasToken: ctx.presentedCredentials });
}

function routeOf(ctx: AnyStage): string {
  return ctx.route?.name ?? 'none';
}

class UpstreamFailure extends Error {
  constructor(readonly failure: unknown) {
    super('upstream handshake failed');
  }
}

function asProxyError(err: unknown): { error: ProxyError; upstream: boolean } {
  const upstream = err instanceof UpstreamFailure;
  const inner = upstream ? err.failure : err;
  const error =
    inner instanceof ProxyError
      ? inner
      : new ProxyError('bad_gateway', 'the proxy could not complete the request', { cause: inner });
  return { error, upstream };
}
