import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Transform } from 'node:stream';
import type { Dispatcher } from 'undici';
import { ProxyError } from '../errors.js';
import { Pool } from '../http/undici.js';
import { type EndableResponse, PASS, type ResponseAction, type UpstreamHead } from '../pipeline/response-action.js';
import { type DeadlineEntry, DeadlineList } from './deadlines.js';
import { responseHeaders } from './headers.js';
import { type GateWaiter, OriginGate } from './origin-gate.js';
import { isRetryableReset } from './reset-retry.js';

export interface ForwardTarget {
  readonly upstream: URL;
  /** Path and query for the upstream, joined to the upstream's own path. */
  readonly path: string;
  readonly method: string;
  /**
   * Outgoing headers as a flat [name, value, ...] list, built fresh for this attempt: no
   * hop-by-hop, no framing (the forwarder frames the body), no Host (the upstream's own).
   */
  readonly headers: string[];
  /**
   * Longest wait for the upstream's response headers, counted from this call: time queued for a
   * connection included (docs/configuration.md, `timeoutMs`). The upload of a streamed request
   * body is not counted, and a streaming response is never cut.
   */
  readonly timeoutMs: number;
  /**
   * The request body: a Buffer already read (replayable, or inspected by a policy), the incoming
   * stream, or none. A stream keeps its framing: `contentLength` when the client sent one, else chunked.
   */
  readonly body: Buffer | IncomingMessage | undefined;
  readonly contentLength?: string | undefined;
  /** Sent back as `x-request-id` when the upstream's response carries none. */
  readonly requestId?: string | undefined;
  /** Decides per response; default: pass. */
  readonly onResponse?: ((head: UpstreamHead) => ResponseAction) | undefined;
}

export interface ForwardResult {
  /** Undefined when no response arrived (the client left first). */
  readonly upstreamStatus: number | undefined;
  /** True when the response was dropped for a retry (see ResponseAction). */
  readonly retry: boolean;
}

/** How dispatch() reports, exactly once: the response's head passed on (or dropped for a retry), or an error. */
export interface ForwardSettled {
  forwarded(result: ForwardResult): void;
  failed(err: unknown): void;
}

export interface Forwarder {
  /**
   * Sends the request upstream and passes the response on; `settled` hears the outcome, once the
   * response's head was passed on (its body keeps streaming) or on an error. No promise: this is
   * the request hot path. The target's `onResponse` is called as a method of the target (an object
   * may be both target and listener).
   */
  dispatch(res: ServerResponse, target: ForwardTarget, settled: ForwardSettled): void;
  close(): Promise<void>;
}

export interface ForwarderOptions {
  /** Connections kept per upstream origin (keep-alive); requests beyond wait in the forwarder's queue. */
  readonly connections: number;
  /** How long an idle upstream connection is kept open. */
  readonly keepAliveTimeoutMs: number;
}

/** RFC 9110 §9.2.2: methods whose repetition has the same effect as one request. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/**
 * HTTP forwarding on undici's low-level `dispatch()`: one Pool per upstream origin with keep-alive.
 * Status and headers are seen before any byte reaches the client (401 replay, step-up challenge,
 * MCP response filters); bodies stream both ways with backpressure, never buffered (SSE passes
 * event by event). Nothing on the incoming request is changed, so a retry only rebuilds its target.
 */
export function createForwarder(
  options: ForwarderOptions,
  /** Hears the size of every request body chunk written upstream (streamed-body-garbage.ts). */
  bodySent: (bytes: number) => void = () => {},
): Forwarder {
  const pools = new Map<string, { pool: Pool; gate: OriginGate }>();
  // One list (and one timer) per timeout length: routes share it when their timeoutMs is the same.
  const deadlines = new Map<number, DeadlineList>();
  const deadlinesOf = (ms: number) => {
    let list = deadlines.get(ms);
    if (list === undefined) {
      list = new DeadlineList(ms);
      deadlines.set(ms, list);
    }
    return list;
  };
  const poolFor = (origin: string) => {
    let entry = pools.get(origin);
    if (entry === undefined) {
      const pool = new Pool(origin, {
        connections: options.connections,
        keepAliveTimeout: options.keepAliveTimeoutMs,
        keepAliveMaxTimeout: options.keepAliveTimeoutMs,
        pipelining: 1,
        // Per request below: headersTimeout is the route's timeoutMs; a streaming body has no limit.
        bodyTimeout: 0,
      });
      entry = { pool, gate: new OriginGate(options.connections) };
      pools.set(origin, entry);
    }
    return entry;
  };

  return {
    dispatch(res, target, settled) {
      const { pool, gate } = poolFor(target.upstream.origin);
      new Exchange(pool, gate, deadlinesOf(target.timeoutMs), res, target, settled, bodySent).start();
    },
    async close() {
      const all = [...pools.values()];
      pools.clear();
      for (const list of deadlines.values()) list.close();
      await Promise.all(all.map(({ pool }) => pool.destroy()));
    },
  };
}

/**
 * The upstream path: the upstream URL's own path, then the request's path and query. Runs of `/`
 * in the path collapse to one, so `//host/x` can never read as an authority upstream.
 */
function upstreamPath(upstream: URL, path: string): string {
  const base = upstream.pathname;
  const joined = base === '/' || base === '' ? path : base.endsWith('/') ? base + path.slice(1) : base + path;
  const q = joined.indexOf('?');
  const pathPart = q === -1 ? joined : joined.slice(0, q);
  if (!pathPart.includes('//')) return joined;
  return pathPart.replace(/\/{2,}/g, '/') + (q === -1 ? '' : joined.slice(q));
}

/** The attempt a response currently belongs to (a retry replaces it), for the one 'close' listener. */
const EXCHANGE = Symbol('delegate-proxy.exchange');
type TrackedResponse = ServerResponse & { [EXCHANGE]?: Exchange | undefined };

/** One listener for every response (added once per response, not per attempt): no closure per request. */
function onClientClose(this: TrackedResponse): void {
  this[EXCHANGE]?.clientGone();
}

/**
 * One forwarded request, as a dispatch handler. Settles its promise exactly once: with the
 * response (headers passed on, or dropped for a retry), or with a ProxyError (502/504) while
 * nothing has reached the client. Afterwards, failures cut the client's stream. Made with no
 * closure: the gate, the deadline list and the client's 'close' reach it as an object.
 */
class Exchange implements Dispatcher.DispatchHandler, GateWaiter, DeadlineEntry, EndableResponse {
  readonly #pool: Pool;
  readonly #gate: OriginGate;
  readonly #deadlines: DeadlineList;
  // The deadline list's links (deadlines.ts): listed from start() until the response headers.
  deadlineDue = 0;
  deadlinePrev: DeadlineEntry | undefined = undefined;
  deadlineNext: DeadlineEntry | undefined = undefined;
  deadlineList: DeadlineList | undefined = undefined;
  readonly #res: TrackedResponse;
  readonly #target: ForwardTarget;
  readonly #listener: ForwardSettled;
  readonly #bodySent: (bytes: number) => void;
  #controller: Dispatcher.DispatchController | undefined;
  /** The dispatch holds a slot at the gate (released on its terminal callback). */
  #dispatched = false;
  #settled = false;
  #started = false;
  /** The upstream sent a first byte of a response (status line begun) on this dispatch. */
  #responseBegun = false;
  #timedOut = false;
  #resetRetried = false;
  #sink: ServerResponse | Transform | undefined;
  #dropped = false;
  /** The proxy ended the response itself (endResponse): the upstream's abort is not a failure. */
  #ended = false;
  /** The client's response carries the upstream's content-length (not a stream that may end early). */
  #sized = false;
  /** Made on the first backpressure only (most responses never fill the client's buffer). */
  #onDrain: (() => void) | undefined;

  constructor(
    pool: Pool,
    gate: OriginGate,
    deadlines: DeadlineList,
    res: ServerResponse,
    target: ForwardTarget,
    settled: ForwardSettled,
    bodySent: (bytes: number) => void,
  ) {
    this.#pool = pool;
    this.#gate = gate;
    this.#deadlines = deadlines;
    this.#res = res;
    this.#target = target;
    this.#listener = settled;
    this.#bodySent = bodySent;
  }

  start(): void {
    const res = this.#res;
    if (res.destroyed) {
      // The client already left (e.g. during the token exchange): nothing to send upstream.
      this.#settle({ upstreamStatus: undefined, retry: false });
      return;
    }
    // The client leaving cancels the upstream request at once, queued, waiting or streaming.
    if (!(EXCHANGE in res)) res.on('close', onClientClose);
    res[EXCHANGE] = this;
    this.#deadlines.add(this);
    this.#gate.enter(this);
  }

  /** The gate let this request through to the pool. */
  admitted(): void {
    if (this.#settled) {
      this.#gate.leave();
      return;
    }
    this.#dispatched = true;
    const t = this.#target;
    const headers =
      t.contentLength !== undefined && !Buffer.isBuffer(t.body)
        ? [...t.headers, 'content-length', t.contentLength]
        : t.headers;
    this.#pool.dispatch(
      {
        origin: t.upstream.origin,
        path: upstreamPath(t.upstream, t.path),
        method: t.method as Dispatcher.HttpMethod,
        headers,
        body: t.body ?? null,
        headersTimeout: t.timeoutMs,
        bodyTimeout: 0,
        // Retries are ours (F below), never undici's own.
        idempotent: false,
      },
      this,
    );
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    // Settled while waiting in undici's queue (deadline or client gone): send nothing.
    if (this.#settled && !this.#started) {
      controller.abort(new Error('request no longer wanted'));
      return;
    }
    // A streamed body may take longer to upload than timeoutMs and must not be cut: from here on
    // undici's headersTimeout (the same timeoutMs) applies, which waits while the upstream reads
    // the body and runs once it is sent or the upstream stops reading.
    if (this.#target.body !== undefined && !Buffer.isBuffer(this.#target.body)) this.#clearDeadline();
  }

  onBodySent(chunk: Buffer | string): void {
    this.#bodySent(chunk.length);
  }

  onResponseStarted(): void {
    this.#responseBegun = true;
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    headers: IncomingHttpHeaders,
    statusText?: string,
  ): void {
    if (this.#settled) {
      controller.abort(new Error('request no longer wanted'));
      return;
    }
    this.#started = true;
    this.#clearDeadline();
    const action = this.#target.onResponse?.({ status, headers }) ?? PASS;
    if (action.kind === 'retry') {
      // Nothing reached the client; this response is dropped with its connection.
      this.#dropped = true;
      this.#detach();
      controller.abort(new Error('response dropped for a retry'));
      this.#settle({ upstreamStatus: status, retry: true });
      return;
    }
    const res = this.#res;
    try {
      // Hop-by-hop headers belong to the upstream leg; Node frames ours itself (headers.ts).
      res.writeHead(
        status,
        statusText,
        responseHeaders(headers, this.#target.requestId, action.transform !== undefined),
      );
    } catch (err) {
      // Nothing of the refused head was kept (it was one list, checked as a whole); the 502 that
      // follows gets its own status text.
      res.statusMessage = '';
      controller.abort(err as Error);
      this.#fail(
        new ProxyError('bad_gateway', 'the upstream sent an invalid response', {
          detail: (err as Error).message,
          cause: err,
        }),
      );
      return;
    }
    // A stream (SSE, chunked) shows its headers at once; a sized body carries them in its first write.
    this.#sized = headers['content-length'] !== undefined && action.transform === undefined;
    if (!this.#sized) res.flushHeaders();
    if (action.transform) {
      const transform = action.transform;
      transform.pipe(res);
      transform.on('error', () => {
        res.destroy();
        controller.abort(new Error('response transform failed'));
      });
      this.#sink = transform;
    } else {
      this.#sink = res;
    }
    this.#settle({ upstreamStatus: status, retry: false });
    action.stream?.streamOpened(this);
  }

  /**
   * The proxy ends a streaming response before the upstream does (a stream's lifetime, a
   * revocation: docs/mcp.md "Stream lifetime"). A chunked response gets its last chunk, so the
   * client sees a clean end and may open it again; the upstream request is aborted. A response
   * sized by content-length cannot end early without lying about its length: it is cut instead.
   */
  endResponse(): void {
    if (!this.#started || this.#ended || this.#dropped || this.#res.writableEnded) return;
    this.#ended = true;
    this.#detach();
    this.#controller?.abort(new Error('response ended by the proxy'));
    if (this.#sized) this.#res.destroy();
    else this.#sink?.end();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const sink = this.#sink;
    if (sink === undefined || this.#ended) return;
    if (!sink.write(chunk)) {
      controller.pause();
      this.#onDrain ??= () => this.#controller?.resume();
      sink.once('drain', this.#onDrain);
    }
  }

  onResponseEnd(): void {
    this.#gate.leave();
    this.#detach();
    if (!this.#ended) this.#sink?.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#gate.leave();
    if (this.#dropped || this.#ended) return;
    if (this.#started) {
      // The response already started: the only honest signal left is to cut the stream.
      this.#detach();
      if (this.#sink !== undefined && this.#sink !== this.#res) this.#sink.destroy(err);
      this.#res.destroy(err);
      return;
    }
    if (this.#settled) return;
    if (this.#res.destroyed) {
      // The client went away (its request body with it): nothing failed upstream.
      this.#settle({ upstreamStatus: undefined, retry: false });
      return;
    }
    if (!this.#resetRetried && !this.#responseBegun && this.#mayRetryReset(err)) {
      // A kept-alive connection the upstream closed as this request went out. The
      // request never reached the application (no response byte): send it once more.
      this.#resetRetried = true;
      this.#dispatched = false;
      this.#controller = undefined;
      // After undici has let go of the dead socket (this callback runs while it is torn down), so
      // the request goes out on another connection.
      setImmediate(() => {
        if (!this.#settled) this.#gate.enter(this);
      });
      return;
    }
    this.#fail(this.#errorFor(err));
  }

  #mayRetryReset(err: Error): boolean {
    const t = this.#target;
    return IDEMPOTENT.has(t.method) && (t.body === undefined || Buffer.isBuffer(t.body)) && isRetryableReset(err);
  }

  #errorFor(err: Error & { code?: string }): ProxyError {
    if (this.#timedOut || err.code === 'UND_ERR_HEADERS_TIMEOUT') {
      return new ProxyError('gateway_timeout', 'the upstream did not answer in time', {
        detail: err.message,
        cause: err,
      });
    }
    return new ProxyError('bad_gateway', 'the upstream could not be reached', {
      detail: `${err.code ?? 'error'}: ${err.message}`,
      cause: err,
    });
  }

  /** The response headers did not arrive within the target's timeoutMs. */
  deadlinePassed(): void {
    if (this.#settled) return;
    this.#timedOut = true;
    const err = new Error(`no response headers within ${this.#target.timeoutMs} ms`);
    this.#fail(this.#errorFor(err));
  }

  /** The client's connection closed (the response finished, or the client went away). */
  clientGone(): void {
    if (this.#res.writableFinished) return;
    if (!this.#settled) this.#settle({ upstreamStatus: undefined, retry: false });
    else this.#cancel(new Error('client went away'));
  }

  /** Ends this attempt with an error response (the caller answers) and cancels the upstream request. */
  #fail(err: ProxyError): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#clearDeadline();
    this.#detach();
    this.#cancel(err);
    this.#listener.failed(err);
  }

  #settle(result: ForwardResult): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#clearDeadline();
    if (!this.#started) {
      this.#detach();
      this.#cancel(new Error('request no longer wanted'));
    }
    this.#listener.forwarded(result);
  }

  /** Stops the upstream request: out of the queue, or aborted on its connection. */
  #cancel(reason: Error): void {
    if (!this.#dispatched) {
      this.#gate.remove(this);
      return;
    }
    // Before onRequestStart, undici still holds it queued: onRequestStart aborts it on arrival.
    this.#controller?.abort(reason);
  }

  /** The client's 'close' no longer concerns this attempt. */
  #detach(): void {
    if (this.#res[EXCHANGE] === this) this.#res[EXCHANGE] = undefined;
  }

  #clearDeadline(): void {
    this.deadlineList?.remove(this);
  }
}
