import http, { type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { pipeline, Readable, type Transform } from 'node:stream';
import httpProxy from 'http-proxy';
import { ProxyError } from '../errors.js';
import { removeHopByHop } from './headers.js';

/** The upstream's status line and headers, before anything reaches the client. */
export interface UpstreamHead {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
}

/**
 * What to do with an upstream response: pass it on (optionally through a body transform that
 * must stream), or drop it so the caller can send the request again (nothing reached the client).
 */
export type ResponseAction =
  | { readonly kind: 'pass'; readonly transform?: Transform | undefined }
  | { readonly kind: 'retry' };

export const PASS: ResponseAction = Object.freeze({ kind: 'pass' });

export interface ForwardTarget {
  readonly upstream: URL;
  /** Path and query for the upstream, joined to the upstream's own path. */
  readonly path: string;
  /** Time allowed for the upstream's response headers; streaming bodies are not cut. */
  readonly timeoutMs: number;
  /** A body already read (replayable, or inspected by a policy), sent instead of the request stream. */
  readonly body?: Buffer | undefined;
  /** Decides per response; default: pass. */
  readonly onResponse?: ((head: UpstreamHead) => ResponseAction) | undefined;
}

export interface ForwardResult {
  readonly upstreamStatus: number;
  /** True when the response was dropped for a retry (see ResponseAction). */
  readonly retry: boolean;
}

export interface Forwarder {
  /** Resolves once the upstream's response headers have been passed on (the body keeps streaming). */
  forward(req: IncomingMessage, res: ServerResponse, target: ForwardTarget): Promise<ForwardResult>;
  close(): void;
}

interface Pending {
  readonly target: ForwardTarget;
  readonly res: ServerResponse;
  /** Transfer-Encoding of a request body that streams: the upstream leg is framed the same way. */
  readonly transferEncoding: string | undefined;
  timedOut: boolean;
  /** The response was dropped for a retry: a later error of this attempt is no longer ours. */
  dropped: boolean;
  resolve(result: ForwardResult): void;
}

export interface ForwarderOptions {
  /** Sockets kept per upstream host (keep-alive). */
  readonly maxSockets?: number;
  readonly maxFreeSockets?: number;
}

/**
 * http-proxy for the request leg, with keep-alive agents (without one it sends `connection: close`
 * on both legs; GOTCHAS.md). The response leg is ours (`selfHandleResponse`) so a response can be
 * inspected before the client sees it. Bodies are piped both ways, never buffered: SSE passes
 * event by event.
 */
export function createForwarder(options: ForwarderOptions = {}): Forwarder {
  const agentOptions = {
    keepAlive: true,
    maxSockets: options.maxSockets ?? 256,
    maxFreeSockets: options.maxFreeSockets ?? 64,
    scheduling: 'lifo' as const,
  };
  const httpAgent = new http.Agent(agentOptions);
  const httpsAgent = new https.Agent(agentOptions);
  const proxy = httpProxy.createProxyServer({
    xfwd: false,
    ws: false,
    changeOrigin: true,
    followRedirects: false,
    selfHandleResponse: true,
  });
  const pending = new WeakMap<IncomingMessage, Pending>();
  // http-proxy url.parse()s a string target on every request (and Node 24 warns about url.parse):
  // give it the same fields, built once per upstream from the WHATWG URL.
  const targets = new WeakMap<URL, httpProxy.ProxyTargetUrl>();
  const targetOf = (u: URL): httpProxy.ProxyTargetUrl => {
    let t = targets.get(u);
    if (t === undefined) {
      // The fields url.parse() would give (host keeps brackets and port, hostname loses brackets).
      t = {
        protocol: u.protocol,
        host: u.host,
        hostname: u.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: u.port === '' ? null : u.port,
        path: u.pathname,
        pathname: u.pathname,
        href: u.href,
      };
      targets.set(u, t);
    }
    return t;
  };

  proxy.on('proxyReq', (proxyReq: ClientRequest, req: IncomingMessage) => {
    const p = pending.get(req);
    if (!p) return;
    if (p.transferEncoding !== undefined) {
      // http-proxy sets `content-length: 0` on a DELETE/OPTIONS without one and drops the
      // Transfer-Encoding: the body would then follow unframed and be read as a second request.
      proxyReq.removeHeader('content-length');
      proxyReq.setHeader('transfer-encoding', p.transferEncoding);
    }
    proxyReq.setTimeout(p.target.timeoutMs, () => {
      p.timedOut = true;
      proxyReq.destroy(new Error(`no response headers within ${p.target.timeoutMs} ms`));
    });
    proxyReq.once('response', () => proxyReq.setTimeout(0));
  });

  proxy.on('proxyRes', (proxyRes: IncomingMessage, req: IncomingMessage) => {
    const p = pending.get(req);
    if (!p) {
      proxyRes.resume();
      return;
    }
    pending.delete(req);
    const status = proxyRes.statusCode ?? 502;
    const action = p.target.onResponse?.({ status, headers: proxyRes.headers }) ?? PASS;
    if (action.kind === 'retry') {
      p.dropped = true;
      proxyRes.resume();
      p.resolve({ upstreamStatus: status, retry: true });
      return;
    }
    const { res } = p;
    // Response hop-by-hop headers belong to the upstream leg; Node frames ours itself.
    removeHopByHop(proxyRes.headers);
    if (action.transform) delete proxyRes.headers['content-length'];
    res.writeHead(status, proxyRes.statusMessage, proxyRes.headers);
    // A stream (SSE, chunked) shows its headers at once; a sized body carries them in its first write.
    if (proxyRes.headers['content-length'] === undefined) res.flushHeaders();
    if (action.transform) {
      pipeline(proxyRes, action.transform, res, (err) => {
        if (err && !res.destroyed) res.destroy();
      });
    } else {
      // pipe(), not pipeline(): pipeline's per-call AbortController and DOMException cost a
      // measured ~55 µs per response (BENCHMARKS.md). Errors and aborts are wired by hand: an
      // upstream that stops mid-body cuts the client's stream, a client that leaves cuts upstream.
      proxyRes.pipe(res);
      proxyRes.once('error', () => res.destroy());
      proxyRes.once('close', () => {
        if (!proxyRes.complete) res.destroy();
      });
      res.once('close', () => {
        if (!proxyRes.complete) proxyRes.destroy();
      });
    }
    p.resolve({ upstreamStatus: status, retry: false });
  });

  return {
    forward(req, res, target) {
      return new Promise<ForwardResult>((resolve, reject) => {
        const transferEncoding = target.body === undefined ? req.headers['transfer-encoding'] : undefined;
        const state: Pending = { target, res, transferEncoding, timedOut: false, dropped: false, resolve };
        pending.set(req, state);
        // http-proxy never calls back when the client went away first (it emits `econnreset`).
        const onClose = () => resolve({ upstreamStatus: res.statusCode, retry: false });
        res.once('close', onClose);
        const settle = <T>(fn: (v: T) => void) => (v: T) => {
          res.off('close', onClose);
          fn(v);
        };
        state.resolve = settle(resolve);
        req.url = target.path;
        const web: httpProxy.ServerOptions = {
          target: targetOf(target.upstream),
          agent: target.upstream.protocol === 'https:' ? httpsAgent : httpAgent,
        };
        if (target.body !== undefined) {
          delete req.headers['transfer-encoding'];
          req.headers['content-length'] = String(target.body.length);
          web.buffer = Readable.from([target.body]);
        }
        proxy.web(req, res, web, (err: NodeJS.ErrnoException) => {
          // A dropped attempt's socket may still fail while the retry is out: the retry owns req and res.
          if (pending.get(req) === state) pending.delete(req);
          res.off('close', onClose);
          if (state.dropped) return;
          if (res.headersSent) {
            // The response already started: the only honest signal left is to cut the stream.
            res.destroy(err);
            resolve({ upstreamStatus: res.statusCode, retry: false });
            return;
          }
          reject(
            state.timedOut
              ? new ProxyError('gateway_timeout', 'the upstream did not answer in time', { detail: err.message, cause: err })
              : new ProxyError('bad_gateway', 'the upstream could not be reached', {
                  detail: `${err.code ?? 'error'}: ${err.message}`,
                  cause: err,
                }),
          );
        });
      });
    },
    close() {
      proxy.close();
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}
