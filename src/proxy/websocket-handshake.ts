import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { ProxyError } from '../errors.js';

/** The upstream's answer to the opening handshake (RFC 6455 §4.1). */
export type HandshakeResult =
  | { readonly kind: 'upgraded'; readonly headers: IncomingHttpHeaders; readonly socket: Duplex }
  | {
      readonly kind: 'response';
      readonly status: number;
      readonly headers: IncomingHttpHeaders;
      readonly body: Buffer;
    };

export interface HandshakeRequest {
  readonly upstream: URL;
  /** Path and query for the upstream, joined to the upstream's own path. */
  readonly path: string;
  /** Request headers without Host, Connection and Upgrade (undici sets them for the upgrade). */
  readonly headers: Record<string, string | string[]>;
  /** Bounds the whole handshake: connection (pool wait included), 101 or the full refusal body. */
  readonly timeoutMs: number;
  /** Aborts the handshake (the agent went away, or shutdown). */
  readonly signal: AbortSignal;
}

/** A refusal body (401/403/5xx page) is held whole so it can be dropped for a retry; bounded. */
const MAX_REFUSAL_BODY_BYTES = 64 * 1024;

/**
 * Sends the opening handshake with undici's low-level `dispatch({ upgrade })`: unlike
 * `dispatcher.upgrade()`, it hands over a non-101 answer with its status, headers and body, which
 * the caller relays or retries (docs/websocket.md).
 */
export function upstreamHandshake(dispatcher: Dispatcher, request: HandshakeRequest): Promise<HandshakeResult> {
  return new Promise<HandshakeResult>((resolve, reject) => {
    let controller: Dispatcher.DispatchController | undefined;
    let settled = false;
    let status = 0;
    let headers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.signal.removeEventListener('abort', onAbort);
      fn();
    };
    const fail = (err: unknown): void => finish(() => reject(toProxyError(err, timedOut)));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      const err = new ProxyError('gateway_timeout', 'the upstream did not answer the WebSocket handshake in time');
      controller?.abort(err);
      fail(err);
    }, request.timeoutMs);
    const onAbort = (): void => {
      const err = new ProxyError('bad_gateway', 'the WebSocket handshake was abandoned', { detail: 'aborted' });
      controller?.abort(err);
      fail(err);
    };
    if (request.signal.aborted) {
      onAbort();
      return;
    }
    request.signal.addEventListener('abort', onAbort, { once: true });

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (settled) c.abort(new Error('handshake already settled'));
      },
      onRequestUpgrade(_c, _statusCode, upgradeHeaders, socket) {
        if (settled) {
          socket.destroy();
          return;
        }
        // undici only calls this for a 101 (RFC 6455 §4.1: anything else is not an upgrade).
        finish(() => resolve({ kind: 'upgraded', headers: upgradeHeaders, socket }));
      },
      onResponseStart(_c, statusCode, responseHeaders) {
        status = statusCode;
        headers = responseHeaders;
      },
      onResponseData(c, chunk) {
        size += chunk.length;
        if (size > MAX_REFUSAL_BODY_BYTES) {
          const err = new ProxyError(
            'bad_gateway',
            'the upstream refused the WebSocket handshake with an oversized body',
            {
              detail: `refusal body over ${MAX_REFUSAL_BODY_BYTES} bytes (status ${status})`,
            },
          );
          c.abort(err);
          fail(err);
          return;
        }
        chunks.push(chunk);
      },
      onResponseEnd() {
        finish(() => resolve({ kind: 'response', status, headers, body: Buffer.concat(chunks) }));
      },
      onResponseError(_c, err) {
        fail(err);
      },
    };
    try {
      dispatcher.dispatch(
        {
          origin: request.upstream.origin,
          path: joinPath(request.upstream, request.path),
          method: 'GET',
          headers: request.headers,
          upgrade: 'websocket',
          headersTimeout: request.timeoutMs,
          bodyTimeout: request.timeoutMs,
        },
        handler,
      );
    } catch (err) {
      fail(err);
    }
  });
}

/** The upstream URL's own path, then the request's path and query (as the HTTP forwarder joins them). */
export function joinPath(upstream: URL, path: string): string {
  const base = upstream.pathname.replace(/\/+$/, '');
  return base === '' ? path : `${base}${path}`;
}

function toProxyError(err: unknown, timedOut: boolean): ProxyError {
  if (err instanceof ProxyError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (
    timedOut ||
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT'
  ) {
    return new ProxyError('gateway_timeout', 'the upstream did not answer the WebSocket handshake in time', {
      cause: err,
    });
  }
  return new ProxyError('bad_gateway', 'the upstream could not be reached', {
    cause: err,
    ...(typeof code === 'string' ? { detail: code } : {}),
  });
}
