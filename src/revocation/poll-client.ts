import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { readBoundedText } from '../http/read-bounded.js';
import { request } from '../http/undici.js';
import type { Timer } from '../pipeline/timer.js';
import type { SsfReceiver } from './receiver.js';
import { SetError, type SetErrorCode } from './set-error.js';

export interface PollClientOptions {
  readonly url: string;
  /** The exact Authorization value (revocation.ssf.authorizationHeaderFile). */
  readonly authorization: string;
  readonly intervalMs: number;
  readonly maxEvents: number;
  readonly receiver: SsfReceiver;
  readonly dispatcher: Dispatcher;
  readonly timeoutMs: number;
  readonly timer: Timer;
  readonly logger: Logger;
  /**
   * Fleet mode (docs/fleet.md "SSF polling"): poll only while holding this lease, so that one pod
   * of the fleet polls the stream at a time. Without it this process always polls.
   */
  readonly lease?: PollLease | undefined;
}

/** One holder at a time across the fleet (src/fleet/lease.ts). */
export interface PollLease {
  /** Takes or renews the lease; true while this process holds it. */
  hold(): Promise<boolean>;
  release(): Promise<void>;
}

/** Longest pause after repeated failures. */
const MAX_BACKOFF_MS = 5 * 60_000;
/** Rounds run back to back while the transmitter has more (or acknowledgements are owed). */
const MAX_ROUNDS_PER_TICK = 20;
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

/**
 * RFC 8936 poll delivery: POSTs `{maxEvents, returnImmediately, ack, setErrs}` to the transmitter
 * every `intervalMs`, applies each SET, and acknowledges it (or reports its error) in the next
 * request. Acknowledgements are kept until a request carrying them succeeds. Failures back off
 * exponentially up to five minutes.
 */
export class PollClient {
  readonly #o: PollClientOptions;
  #acks: string[] = [];
  #errs: Record<string, { err: SetErrorCode; description: string }> = {};
  #failures = 0;
  #cancel: (() => void) | undefined;
  #closed = false;
  #running: Promise<void> | undefined;
  readonly #abort = new AbortController();

  constructor(options: PollClientOptions) {
    this.#o = options;
  }

  start(): void {
    this.#schedule(0);
  }

  close(): void {
    this.#closed = true;
    this.#cancel?.();
    this.#abort.abort();
    // Another pod takes over at its next tick instead of after the lease period.
    void this.#o.lease?.release();
  }

  /** The rounds of one tick (also what the timer runs); resolves when they are done. */
  tick(): Promise<void> {
    this.#running ??= this.#tick().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #tick(): Promise<void> {
    let next = this.#o.intervalMs;
    try {
      for (let round = 0; round < MAX_ROUNDS_PER_TICK && !this.#closed; round++) {
        // Taken or renewed before every round: a round never starts on a lease that has run out.
        if (this.#o.lease !== undefined && !(await this.#o.lease.hold())) break;
        if (this.#closed) break;
        const more = await this.#round();
        this.#failures = 0;
        if (!more && this.#acks.length === 0 && Object.keys(this.#errs).length === 0) break;
      }
    } catch (err) {
      if (this.#closed) return;
      this.#failures++;
      next = Math.min(MAX_BACKOFF_MS, this.#o.intervalMs * 2 ** this.#failures);
      this.#o.logger.warn(
        { err: (err as Error).message, failures: this.#failures, retryInMs: next },
        'SSF poll failed',
      );
    }
    this.#schedule(next);
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    this.#cancel = this.#o.timer.set(ms, () => void this.tick());
  }

  /** One request; true when the transmitter says more events are waiting. */
  async #round(): Promise<boolean> {
    const acks = this.#acks;
    const errs = this.#errs;
    const body: Record<string, unknown> = { maxEvents: this.#o.maxEvents, returnImmediately: true, ack: acks };
    if (Object.keys(errs).length > 0) body.setErrs = errs;
    const res = await request(this.#o.url, {
      method: 'POST',
      headers: { authorization: this.#o.authorization, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
      dispatcher: this.#o.dispatcher,
      signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.#o.timeoutMs)]),
    });
    const text = await readBoundedText(res.body, MAX_RESPONSE_BYTES, `response from ${this.#o.url}`);
    if (res.statusCode !== 200) throw new Error(`${this.#o.url} answered ${res.statusCode}`);
    // The transmitter has them now (RFC 8936 §2.4): drop them only after a successful answer.
    this.#acks = this.#acks.slice(acks.length);
    for (const jti of Object.keys(errs)) delete this.#errs[jti];
    const { sets, malformed, moreAvailable } = parseAnswer(text);
    for (const jti of malformed) this.#errs[jti] = { err: 'invalid_request', description: 'the SET is not a string' };
    for (const [jti, set] of Object.entries(sets)) {
      if (this.#closed) break;
      try {
        await this.#o.receiver.receive(set, 'poll');
        this.#acks.push(jti);
      } catch (err) {
        if (!(err instanceof SetError)) throw err;
        if (err.duplicate)
          this.#acks.push(jti); // applied before; its ack was lost
        else if (err.status >= 500)
          throw err; // keys unavailable: not acknowledged, so delivered again
        else this.#errs[jti] = { err: err.err, description: err.description };
      }
    }
    return moreAvailable;
  }
}

function parseAnswer(text: string): { sets: Record<string, string>; malformed: string[]; moreAvailable: boolean } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error('the poll answer is not JSON');
  }
  const d = doc !== null && typeof doc === 'object' ? (doc as Record<string, unknown>) : {};
  const sets = d.sets;
  if (sets === null || typeof sets !== 'object' || Array.isArray(sets))
    throw new Error('the poll answer has no sets object');
  const out: Record<string, string> = {};
  const malformed: string[] = [];
  for (const [jti, set] of Object.entries(sets)) {
    if (typeof set === 'string') out[jti] = set;
    else malformed.push(jti);
  }
  return { sets: out, malformed, moreAvailable: d.moreAvailable === true };
}
