import type { SubjectTarget } from '../auth/subject-index.js';
import { normalizeEmail } from '../auth/subject-index.js';
import type { SubjectInfo } from '../auth/token-service.js';
import type { Metrics, StreamCloseReason, StreamKind } from '../observability/metrics.js';
import type { Timer } from '../pipeline/timer.js';

/** What the registry knows of the user behind a stream: the user token's decoded claims, never the token. */
export interface StreamClaims {
  readonly sub: string | undefined;
  readonly iss: string | undefined;
  readonly email: string | undefined;
  /** Epoch seconds. */
  readonly iat: number | undefined;
}

/** Ends one open long-lived response: an SSE response ends cleanly, a WebSocket gets a close frame. */
export interface StreamCloser {
  closeStream(reason: StreamCloseReason): void;
}

export interface OpenStreamsOptions {
  readonly metrics: Metrics;
  /** Schedules lifetime limits (tests run them by hand). */
  readonly timer: Timer;
  /** Most streams tracked at once; a stream beyond it is closed at once (reason `capacity`). */
  readonly maxStreams: number;
}

export interface StreamStart {
  readonly kind: StreamKind;
  readonly route: string;
  readonly subject: SubjectInfo;
  /** Closes the stream after this many ms (reason `lifetimeReason`); undefined: no limit. */
  readonly lifetimeMs: number | undefined;
  /** `expired` when the limit is the delegated token's expiry, `max_lifetime` when configured. */
  readonly lifetimeReason: 'expired' | 'max_lifetime';
  readonly closer: StreamCloser;
}

/** Longest timer Node can arm (about 24.8 days); longer limits are clamped to it. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The lifetime timer of a stream. Not unref()'d: Node keeps the (empty) list of a cleared unref'd
 * timer until its original expiry, one per distinct duration, and lifetimes differ per stream
 * (measured on the WebSocket path: one TimersList per connection left in the heap). The stream's
 * sockets keep the process alive anyway, and ending the stream clears its timer.
 */
export const streamTimer: Timer = {
  set(ms, fn) {
    const t = setTimeout(fn, Math.min(Math.max(0, ms), MAX_TIMER_MS));
    return () => clearTimeout(t);
  },
};

/** One tracked stream; removed from the registry when it ends, whoever ends it. */
export class OpenStream implements StreamClaims {
  readonly sub: string | undefined;
  readonly iss: string | undefined;
  readonly email: string | undefined;
  readonly iat: number | undefined;
  #cancelTimer: (() => void) | undefined = undefined;
  #done = false;

  constructor(
    private readonly registry: OpenStreams,
    readonly kind: StreamKind,
    readonly route: string,
    subject: SubjectInfo,
    private readonly closer: StreamCloser,
  ) {
    this.sub = subject.sub;
    this.iss = subject.iss;
    this.email = subject.email;
    this.iat = subject.iat;
  }

  /** @internal the registry arms the lifetime limit. */
  arm(timer: Timer, ms: number, reason: StreamCloseReason): void {
    this.#cancelTimer = timer.set(ms, () => this.close(reason));
  }

  /** The proxy closes the stream (lifetime, revocation): counted, then ended. */
  close(reason: StreamCloseReason): void {
    if (this.#done) return;
    this.ended();
    this.registry.counted(this, reason);
    this.closer.closeStream(reason);
  }

  /** The stream is over (closed by either peer, or by the proxy): out of the registry, timer cleared. */
  ended(): void {
    if (this.#done) return;
    this.#done = true;
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    this.registry.removed(this);
  }
}

/**
 * Open long-lived responses (SSE streams, WebSocket connections) by user, so that a revocation can
 * close them (docs/revocation.md "Open streams") and each can be closed when the token that opened
 * it expires (docs/mcp.md "Stream lifetime", docs/websocket.md). A stream is added when its
 * response starts and removed when it ends, so the registry holds no more than the open
 * connections, and at most `maxStreams`. Ordinary requests never reach it.
 */
export class OpenStreams {
  readonly #o: OpenStreamsOptions;
  readonly #all = new Set<OpenStream>();
  readonly #bySub = new Map<string, Set<OpenStream>>();
  readonly #byEmail = new Map<string, Set<OpenStream>>();

  constructor(options: OpenStreamsOptions) {
    this.#o = options;
  }

  get size(): number {
    return this.#all.size;
  }

  /**
   * Tracks a stream that has just started; the caller calls `ended()` on the result when it is
   * over. When the registry is full the stream is closed at once (it could not be revoked) and
   * undefined is returned.
   */
  open(start: StreamStart): OpenStream | undefined {
    const stream = new OpenStream(this, start.kind, start.route, start.subject, start.closer);
    if (this.#all.size >= this.#o.maxStreams) {
      this.counted(stream, 'capacity');
      start.closer.closeStream('capacity');
      return undefined;
    }
    this.#all.add(stream);
    if (stream.sub !== undefined) addTo(this.#bySub, stream.sub, stream);
    if (stream.email !== undefined) addTo(this.#byEmail, normalizeEmail(stream.email), stream);
    if (start.lifetimeMs !== undefined) stream.arm(this.#o.timer, start.lifetimeMs, start.lifetimeReason);
    return stream;
  }

  /**
   * Closes the open streams of `target` whose claims `matches` accepts (the revocation list's own
   * rule: issuer and `iat`); returns how many. A `sub` target finds streams by `sub`, an email
   * target by the normalised `email` claim.
   */
  closeSubject(target: SubjectTarget, matches: (claims: StreamClaims) => boolean): number {
    const candidates =
      target.kind === 'email' ? this.#byEmail.get(normalizeEmail(target.email)) : this.#bySub.get(target.sub);
    if (candidates === undefined) return 0;
    let closed = 0;
    // A copy: closing removes streams from the set being walked.
    for (const stream of [...candidates]) {
      if (!matches(stream)) continue;
      stream.close('revoked');
      closed++;
    }
    return closed;
  }

  /** @internal */
  counted(stream: OpenStream, reason: StreamCloseReason): void {
    this.#o.metrics.streamsClosed.inc({ route: stream.route, kind: stream.kind, reason });
  }

  /** @internal */
  removed(stream: OpenStream): void {
    if (!this.#all.delete(stream)) return;
    if (stream.sub !== undefined) removeFrom(this.#bySub, stream.sub, stream);
    if (stream.email !== undefined) removeFrom(this.#byEmail, normalizeEmail(stream.email), stream);
  }
}

function addTo(map: Map<string, Set<OpenStream>>, id: string, stream: OpenStream): void {
  const set = map.get(id);
  if (set === undefined) map.set(id, new Set([stream]));
  else set.add(stream);
}

function removeFrom(map: Map<string, Set<OpenStream>>, id: string, stream: OpenStream): void {
  const set = map.get(id);
  if (set === undefined) return;
  set.delete(stream);
  if (set.size === 0) map.delete(id);
}
