import { type IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { ProxyError } from '../errors.js';
import type { WebSocketOutcome } from '../observability/metrics.js';
import { createContext } from '../pipeline/context.js';
import { sendError } from './error-response.js';
import { buildUpstreamHeaders } from './headers.js';
import { type AnyStage, admit, authorize, type PrepareDeps, type Prepared, refreshToken } from './prepare.js';
import { planRetry } from './retry.js';
import { checkUpgrade, isWebSocketUpgrade, lifetimeMs } from './websocket-checks.js';
import { type HandshakeResult, upstreamHandshake } from './websocket-handshake.js';
import { endSocket, handshakeHeaders, relayRefusal, switchingProtocols } from './websocket-messages.js';
import { type ClosedBy, type Relay, relay } from './websocket-relay.js';

export interface WebSocketDeps extends PrepareDeps {
  readonly logger: Logger;
  /** Dispatcher for upstream handshakes (its pools only ever hold a socket until it is upgraded). */
  readonly dispatcher: Dispatcher;
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
export function createWebSocketUpgrades(deps: WebSocketDeps): WebSocketUpgrades {
  const live = new Set<Live>();
  let closing = false;
  let emptied: (() => void) | undefined;

  const forget = (entry: Live): void => {
    if (!live.delete(entry)) return;
    if (live.size === 0) emptied?.();
  };

  function handle(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const entry: Live = { socket, abort: new AbortController() };
    live.add(entry);
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
      forget(entry);
      // Refused or relayed before any 101; with no outcome the agent left during the handshake.
      const closedBy: ClosedBy =
        outcome.value === undefined ? 'client' : outcome.value === 'upstream_error' ? 'upstream' : 'proxy';
      accessLine(ctx, res.headersSent ? res.statusCode : undefined, { closedBy });
    });
    const settle = (value: 'refused' | 'upstream_error'): void => {
      outcome.value = value;
      deps.metrics.websocketConnectionsTotal.inc({ route: routeOf(ctx), outcome: value });
    };
    if (closing) {
      settle('refused');
      refuse(ctx, new ProxyError('temporarily_unavailable', 'the proxy is shutting down', { retryAfterSeconds: 1 }));
      return;
    }
    open(ctx, entry, head)
      .then((result) => {
        if (result === 'upstream_error') settle(result);
      })
      .catch((err: unknown) => {
        if (entry.abort.signal.aborted) return; // the agent left: nothing to answer, nothing refused
        const error = asProxyError(err);
        settle(error.upstream ? 'upstream_error' : 'refused');
        refuse(ctx, error.error);
      });
  }

  async function open(context: AnyStage, entry: Live, clientHead: Buffer): Promise<WebSocketOutcome | 'gone'> {
    const { req } = context;
    // Node < 24.9 has no shouldUpgradeCallback: other upgrades (h2c...) arrive here too.
    if (!isWebSocketUpgrade(req)) throw new ProxyError('invalid_request', 'only WebSocket upgrades are supported');
    const admitted = admit(context, deps); // 2-3. route, subject (taken and removed), other credential carriers
    checkUpgrade(admitted); // route allows WebSockets; no body; no copy of the user token left in the request
    const ctx = await authorize(admitted, deps); // 3-6. local verification, policy, token, step-up
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
        startRelay(ctx, entry, result, clientHead);
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

  function startRelay(
    ctx: Prepared,
    entry: Live,
    result: Extract<HandshakeResult, { kind: 'upgraded' }>,
    clientHead: Buffer,
  ): void {
    const { route } = ctx;
    const { socket } = entry;
    ctx.res.detachSocket(socket as never);
    ctx.upstreamStatus = 101;
    socket.write(switchingProtocols(result.headers, ctx.id));
    deps.metrics.websocketConnections.inc({ route: route.name });
    deps.metrics.websocketConnectionsTotal.inc({ route: route.name, outcome: 'opened' });
    const openedAt = performance.now();
    entry.relay = relay(socket, result.socket, {
      clientHead,
      maxMs: lifetimeMs(ctx, deps.clock),
      lingerMs: LINGER_MS,
      onEnd: (end) => {
        forget(entry);
        deps.metrics.websocketConnections.dec({ route: route.name });
        accessLine(ctx, 101, {
          closedBy: end.closedBy,
          closeReason: end.reason,
          openMs: Math.round(performance.now() - openedAt),
          bytesFromClient: end.bytesFromClient,
          bytesFromUpstream: end.bytesFromUpstream,
          cut: end.cut || undefined,
        });
      },
    });
  }

  function refuse(ctx: AnyStage, error: ProxyError): void {
    const fields = { code: error.code, status: error.status, detail: error.detail };
    if (error.status >= 500) ctx.log.error({ ...fields, err: error.cause }, 'WebSocket upgrade failed');
    else ctx.log.info(fields, 'WebSocket upgrade refused');
    if (ctx.res.socket === null || ctx.res.socket.destroyed) return;
    ctx.res.once('finish', () => endSocket(ctx.res));
    sendError(ctx.res, error, { requestId: ctx.id, hasToken: ctx.presentedCredentials });
  }

  /** One line per upgrade when it is over (docs/websocket.md); fixed fields, never a credential. */
  function accessLine(ctx: AnyStage, status: number | undefined, extra: Record<string, unknown>): void {
    deps.logger.info(
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

  return {
    handle,
    get count() {
      return live.size;
    },
    async close(graceMs) {
      closing = true;
      if (live.size > 0) {
        const idle = new Promise<void>((resolve) => {
          emptied = resolve;
        });
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([idle, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
        clearTimeout(timer);
      }
      const cut = live.size;
      if (cut === 0) return 0;
      const idle = new Promise<void>((resolve) => {
        emptied = resolve;
      });
      for (const entry of live) {
        entry.abort.abort();
        if (entry.relay) entry.relay.close('shutdown');
        else entry.socket.destroy();
      }
      // The close frames get LINGER_MS to be answered; the relay cuts the sockets after that.
      await idle;
      return cut;
    },
  };
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
