import http, { type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import httpProxy from 'http-proxy';
import { ProxyError } from '../errors.js';
import { removeHopByHop } from './headers.js';

export interface ForwardTarget {
  readonly upstream: URL;
  /** Path and query for the upstream, joined to the upstream's own path. */
  readonly path: string;
  /** Time allowed for the upstream's response headers; streaming bodies are not cut. */
  readonly timeoutMs: number;
  /** A body already read (e.g. by the MCP policy), sent instead of the request stream. */
  readonly body?: Buffer | undefined;
}

export interface ForwardResult {
  readonly upstreamStatus: number;
}

export interface Forwarder {
  /** Resolves once the upstream's response headers have been passed on (the body keeps streaming). */
  forward(req: IncomingMessage, res: ServerResponse, target: ForwardTarget): Promise<ForwardResult>;
  close(): void;
}

interface Pending {
  timeoutMs: number;
  timedOut: boolean;
  resolve(result: ForwardResult): void;
}

export interface ForwarderOptions {
  /** Sockets kept per upstream host (keep-alive). */
  readonly maxSockets?: number;
  readonly maxFreeSockets?: number;
}

/**
 * http-proxy with keep-alive agents (without one it sends `connection: close` on both legs; see
 * GOTCHAS.md). Request and response bodies are piped, never buffered, so SSE passes event by event.
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
  const proxy = httpProxy.createProxyServer({ xfwd: false, ws: false, changeOrigin: true, followRedirects: false });
  const pending = new WeakMap<IncomingMessage, Pending>();

  proxy.on('proxyReq', (proxyReq: ClientRequest, req: IncomingMessage) => {
    const p = pending.get(req);
    if (!p) return;
    proxyReq.setTimeout(p.timeoutMs, () => {
      p.timedOut = true;
      proxyReq.destroy(new Error(`no response headers within ${p.timeoutMs} ms`));
    });
    proxyReq.once('response', () => proxyReq.setTimeout(0));
  });

  proxy.on('proxyRes', (proxyRes: IncomingMessage, req: IncomingMessage) => {
    // Response hop-by-hop headers are for the upstream leg only; Node frames our leg itself.
    removeHopByHop(proxyRes.headers, true);
    pending.get(req)?.resolve({ upstreamStatus: proxyRes.statusCode ?? 502 });
  });

  return {
    forward(req, res, target) {
      return new Promise<ForwardResult>((resolve, reject) => {
        const state: Pending = { timeoutMs: target.timeoutMs, timedOut: false, resolve };
        pending.set(req, state);
        // http-proxy never calls back when the client went away first (it emits `econnreset`).
        res.once('close', () => resolve({ upstreamStatus: res.statusCode }));
        req.url = target.path;
        const web: httpProxy.ServerOptions = {
          target: target.upstream.href,
          agent: target.upstream.protocol === 'https:' ? httpsAgent : httpAgent,
        };
        if (target.body !== undefined) {
          req.headers['content-length'] = String(target.body.length);
          delete req.headers['transfer-encoding'];
          web.buffer = Readable.from([target.body]);
        }
        proxy.web(req, res, web, (err: NodeJS.ErrnoException) => {
          if (res.headersSent) {
            // The response already started: the only honest signal left is to cut the stream.
            res.destroy(err);
            resolve({ upstreamStatus: res.statusCode });
            return;
          }
          if (state.timedOut) {
            reject(
              new ProxyError('gateway_timeout', 'the upstream did not answer in time', {
                detail: err.message,
                cause: err,
              }),
            );
            return;
          }
          reject(
            new ProxyError('bad_gateway', 'the upstream could not be reached', {
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
