import type { IncomingMessage, ServerResponse } from 'node:http';
import { ProxyError, toProxyError } from '../errors.js';
import { sendJson } from '../http/send-json.js';
import { mcpFailure, mcpResponseAction } from '../mcp/policy-step.js';
import { type AccessLog, createAccessLog } from '../observability/access-line.js';
import { createContext } from '../pipeline/context.js';
import { LocalAnswer } from '../pipeline/local-answer.js';
import { hasBody, isReplayable, readBody } from '../pipeline/request-body.js';
import type {
  EndableResponse,
  ResponseAction,
  RetryPlan,
  StreamListener,
  UpstreamHead,
} from '../pipeline/response-action.js';
import { sendError } from './error-response.js';
import type { Forwarder, ForwardResult, ForwardSettled, ForwardTarget } from './forwarder.js';
import { buildUpstreamHeaders } from './headers.js';
import { isLongLived, trackSse } from './long-lived.js';
import type { OpenStreams } from './open-streams.js';
import { type AnyStage, type PipelineDeps, type Prepared, prepare, refreshToken } from './prepare.js';
import { planRetry } from './retry.js';
import { refuseUserTokenInBody } from './user-token-elsewhere.js';

/** What the HTTP pipeline reads: the steps' own (prepare.ts) and the forwarder. */
interface HandlerDeps extends PipelineDeps {
  readonly forwarder: Forwarder;
  /** Open long-lived responses (docs/revocation.md "Open streams"); without it none are tracked. */
  readonly streams?: OpenStreams | undefined;
}

/** Where the pipeline keeps a response's context, for the one shared 'close' listener. */
const CONTEXT = Symbol('delegate-proxy.context');
type WithContext = ServerResponse & { [CONTEXT]?: AnyStage };

/**
 * The agent-facing request pipeline (docs/design.md "Request pipeline"): 1. context → 2-6. the
 * steps (prepare.ts STEPS) → 7. forward → 8. record. Any step may throw a ProxyError, which becomes
 * the error response, or a LocalAnswer, which becomes the response as it is. On a warm cache, steps
 * 1-7 run in this call with no promise and no closure: a promise only where a step has to wait
 * (exchange, body, step-up).
 */
export function createHandler(
  pipeline: PipelineDeps,
  forwarder: Forwarder,
  streams?: OpenStreams,
): (req: IncomingMessage, res: ServerResponse) => void {
  const deps: HandlerDeps = { ...pipeline, forwarder, streams };
  const accessLog = createAccessLog(deps.logger);
  // One listener for every response (no closure per request): 8. record, also when the client goes away.
  function onClose(this: WithContext): void {
    const ctx = this[CONTEXT];
    if (ctx !== undefined) record(ctx, deps, accessLog);
  }
  return (req, res) => {
    const ctx: AnyStage = createContext(req, res, deps.logger); // 1. context
    (res as WithContext)[CONTEXT] = ctx;
    res.on('close', onClose); // once per response: no once() wrapper
    try {
      const prepared = prepare(ctx, deps); // 2-6. the steps
      if (prepared instanceof Promise) prepared.then((p) => forward(p, deps)).catch((err: unknown) => fail(ctx, err));
      else forward(prepared, deps); // 7. forward
    } catch (err) {
      fail(ctx, err);
    }
  };
}

/** Bodies up to this size are kept so the request can be replayed once. */
const REPLAY_LIMIT_BYTES = 64 * 1024;

/** Step 7: the request upstream with the delegated token; once more after a 401 or an approved challenge. */
function forward(ctx: Prepared, deps: HandlerDeps): void {
  // No body (most GETs), or one a step already read: nothing to wait for before dispatching.
  if (ctx.body === undefined && hasBody(ctx.req)) {
    if (isReplayable(ctx.req, REPLAY_LIMIT_BYTES)) readThenForward(ctx, deps);
    else send(ctx, deps, false, true); // streamed, never replayed
    return;
  }
  send(ctx, deps, true, false);
}

/** A small body is kept so the request can be replayed once; one promise, the body's. */
function readThenForward(ctx: Prepared, deps: HandlerDeps): void {
  readBody(ctx.req, REPLAY_LIMIT_BYTES).then(
    (body) => {
      ctx.body = body;
      send(ctx, deps, true, false);
    },
    (err: unknown) => fail(ctx, err),
  );
}

function send(ctx: Prepared, deps: HandlerDeps, replayable: boolean, streamed: boolean): void {
  try {
    refuseUserTokenInBody(ctx); // nor in a body held in memory (replay buffer, MCP)
    new Attempt(ctx, deps, 1, replayable, streamed).dispatch();
  } catch (err) {
    fail(ctx, err);
  }
}

/**
 * One upstream attempt: the forwarder's target (fresh headers: a retry carries the token it was
 * retried for) and the listener of its outcome, in one object.
 */
class Attempt implements ForwardTarget, ForwardSettled, StreamListener {
  readonly upstream: URL;
  readonly path: string;
  readonly method: string;
  readonly headers: string[];
  readonly timeoutMs: number;
  readonly body: Buffer | IncomingMessage | undefined;
  readonly contentLength: string | undefined;
  readonly requestId: string;
  #plan: RetryPlan | undefined = undefined;

  constructor(
    private readonly ctx: Prepared,
    private readonly deps: HandlerDeps,
    private readonly attempt: number,
    private readonly replayable: boolean,
    streamed: boolean,
  ) {
    const { req, route } = ctx;
    this.upstream = route.upstream;
    this.path = ctx.forwardPath;
    this.method = req.method ?? 'GET';
    this.headers = buildUpstreamHeaders(req.headers, {
      clientAddress: req.socket.remoteAddress,
      host: req.headers.host,
      requestId: ctx.id,
      accessToken: ctx.token.token.accessToken,
    });
    this.timeoutMs = route.timeoutMs;
    this.requestId = ctx.id;
    this.body = streamed ? req : ctx.body;
    // A sized body keeps its length upstream; a chunked one stays chunked (RFC 9112 §6.1).
    this.contentLength = streamed
      ? req.headers['content-length']
      : hasBody(req)
        ? undefined
        : req.headers['content-length'];
  }

  dispatch(): void {
    this.deps.forwarder.dispatch(this.ctx.res, this, this);
  }

  onResponse(head: UpstreamHead): ResponseAction {
    const { ctx } = this;
    // Set here, not when settled: the response may finish (and be recorded) first.
    ctx.upstreamStatus = head.status;
    if (this.attempt === 1 && this.replayable) {
      this.#plan = planRetry(ctx, head, { refreshToken: (c) => refreshToken(c, this.deps), stepUp: this.deps.stepUp });
      if (this.#plan) return RETRY;
    }
    const action = mcpResponseAction(ctx, head);
    if (this.deps.streams === undefined || action.kind !== 'pass' || !isLongLived(ctx, head)) return action;
    return { kind: 'pass', transform: action.transform, stream: this };
  }

  /** A long-lived response's head went to the client: tracked until it closes. */
  streamOpened(response: EndableResponse): void {
    const { streams, clock } = this.deps;
    if (streams !== undefined) trackSse(this.ctx, response, streams, clock);
  }

  forwarded(result: ForwardResult): void {
    const { ctx } = this;
    if (result.upstreamStatus !== undefined) ctx.upstreamStatus = result.upstreamStatus;
    const plan = this.#plan;
    if (!result.retry || plan === undefined) return;
    ctx.log.info({ upstreamStatus: result.upstreamStatus, reason: plan.reason }, 'retrying request once');
    plan
      .prepare()
      .then(() => new Attempt(ctx, this.deps, this.attempt + 1, this.replayable, false).dispatch())
      .catch((err: unknown) => fail(ctx, err));
  }

  failed(err: unknown): void {
    fail(this.ctx, err);
  }
}

const RETRY: ResponseAction = Object.freeze({ kind: 'retry' });

function fail(ctx: AnyStage, err: unknown): void {
  if (err instanceof LocalAnswer) {
    answer(ctx, err);
    return;
  }
  const error = toProxyError(err);
  const fields = { code: error.code, status: error.status, detail: error.detail };
  // An unexpected exception is logged with its stack (pino's err serializer); a ProxyError is not.
  if (error.status >= 500)
    ctx.log.error({ ...fields, err: err instanceof ProxyError ? undefined : err }, 'request failed');
  else ctx.log.info(fields, 'request refused');
  sendError(ctx.res, mcpFailure(ctx, error), { requestId: ctx.id, hasToken: ctx.presentedCredentials });
}

/** A step answered the request itself (the step logged why): the body as JSON, nothing forwarded. */
function answer(ctx: AnyStage, local: LocalAnswer): void {
  if (ctx.res.headersSent) {
    ctx.res.destroy();
    return;
  }
  sendJson(ctx.res, local.status, local.body, { 'x-request-id': ctx.id });
}

function record(ctx: AnyStage, deps: HandlerDeps, accessLog: AccessLog): void {
  const seconds = (performance.now() - ctx.startedAt) / 1000;
  const status = ctx.res.statusCode;
  if (ctx.route !== undefined) {
    const children = deps.routeMetrics(ctx.route);
    children.requests(status).inc();
    children.requestDuration.observe(seconds);
  } else {
    deps.metrics.requests.inc({ route: 'none', code: String(status) });
    deps.metrics.requestDuration.observe({ route: 'none' }, seconds);
  }
  accessLog.write({
    reqId: ctx.id,
    route: ctx.route?.name,
    method: ctx.req.method,
    path: ctx.forwardPath === undefined ? undefined : pathOnly(ctx.forwardPath),
    status,
    upstreamStatus: ctx.upstreamStatus,
    durationMs: Math.round(seconds * 1e6) / 1e3,
    cache: ctx.token?.result,
    sub: ctx.subject?.sub,
    aborted: !ctx.res.writableFinished,
    extra: ctx.logFields,
  });
}

/** The path without its query (the query may carry agent data; the access line keeps the path only). */
function pathOnly(pathAndQuery: string): string {
  const q = pathAndQuery.indexOf('?');
  return q === -1 ? pathAndQuery : pathAndQuery.slice(0, q);
}
