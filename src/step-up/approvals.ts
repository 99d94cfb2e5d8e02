import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { Metrics } from '../observability/metrics.js';
import type { Clock } from '../pipeline/clock.js';
import type { Timer } from '../pipeline/timer.js';
import { safeEqual } from './signature.js';
import { postWebhook, type WebhookOptions } from './webhook.js';

/** What a person is asked to approve. Every field is shown to the approver. */
export interface ApprovalInput {
  readonly route: string;
  /** The elevated scopes asked for (not the route's baseline). */
  readonly scopes: readonly string[];
  readonly sub: string | undefined;
  readonly actor: string | undefined;
  readonly method: string;
  /** Path and query as sent upstream. */
  readonly path: string;
  readonly mcpTools: readonly string[];
  /** Lower-case hex SHA-256 of the exact request body that will be forwarded (empty body included). */
  readonly bodySha256: string;
  /** The agent's `X-Step-Up-Reason`, sanitized; untrusted text. */
  readonly reason: string | undefined;
  readonly trigger: 'rule' | 'challenge';
  readonly requestId: string;
}

export interface PendingApproval extends ApprovalInput {
  readonly id: string;
  /** Epoch ms (injected clock). */
  readonly createdAt: number;
  readonly expiresAt: number;
}

export type DecisionVia = 'webhook' | 'callback' | 'page';

export type ApprovalResult =
  | { readonly outcome: 'approved' | 'denied'; readonly approver: string | undefined; readonly via: DecisionVia }
  | { readonly outcome: 'timeout' }
  /** The agent went away or the proxy shut down before a decision. */
  | { readonly outcome: 'withdrawn'; readonly reason: 'client_disconnected' | 'shutdown' }
  | { readonly outcome: 'error'; readonly detail: string };

export type DecideResult = 'decided' | 'unknown' | 'already_decided' | 'digest_mismatch';

export interface ApprovalServiceOptions {
  readonly webhookUrl: string | undefined;
  /** Base of `decisionUrl` in webhook events (the admin listener as approvers reach it). */
  readonly callbackBaseUrl?: string | undefined;
  readonly timeoutSeconds: number;
  readonly secret: string | undefined;
  readonly dispatcher: Dispatcher;
  readonly clock: Clock;
  readonly timer: Timer;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Fleet mode (docs/fleet.md "Approvals"): told when an approval starts waiting and when it settles. */
  readonly onPending?: ((a: PendingApproval) => void) | undefined;
  readonly onSettled?: ((a: PendingApproval) => void) | undefined;
}

interface Entry {
  readonly approval: PendingApproval;
  settle(result: ApprovalResult): void;
}

/** Bounds: pending approvals held at once, and decided ids remembered to refuse replays. */
const MAX_PENDING = 1000;
const MAX_REMEMBERED = 10_000;
const NOTICE_TIMEOUT_MS = 5_000;

/**
 * Pending step-up approvals: asks the webhook, waits for a decision from it, a signed callback or
 * the approval page, and settles each approval exactly once. Ids are random, single-use, and bound
 * to the body digest of the request they were issued for.
 */
export class ApprovalService {
  readonly #o: ApprovalServiceOptions;
  readonly #pending = new Map<string, Entry>();
  readonly #decided = new LRUCache<string, ApprovalResult['outcome']>({ max: MAX_REMEMBERED });
  readonly #webhook: WebhookOptions | undefined;

  constructor(options: ApprovalServiceOptions) {
    this.#o = options;
    this.#webhook =
      options.webhookUrl === undefined
        ? undefined
        : {
            url: options.webhookUrl,
            dispatcher: options.dispatcher,
            secret: options.secret,
            now: () => options.clock.now(),
          };
  }

  /** Approvals waiting for a decision, oldest first. */
  list(): PendingApproval[] {
    return [...this.#pending.values()].map((e) => e.approval);
  }

  get(id: string): PendingApproval | undefined {
    return this.#pending.get(id)?.approval;
  }

  /**
   * Asks for a decision and resolves once there is one (never rejects). `signal` withdraws the
   * request (the agent disconnected).
   */
  request(
    input: ApprovalInput,
    signal: AbortSignal,
  ): { readonly approval: PendingApproval; readonly result: Promise<ApprovalResult> } {
    const { clock, metrics, timer } = this.#o;
    const now = clock.now();
    const approval: PendingApproval = Object.freeze({
      ...input,
      id: randomUUID(),
      createdAt: now,
      expiresAt: now + this.#o.timeoutSeconds * 1000,
    });
    if (this.#pending.size >= MAX_PENDING) {
      return {
        approval,
        result: Promise.resolve({ outcome: 'error', detail: `more than ${MAX_PENDING} approvals pending` }),
      };
    }
    const webhookCall = new AbortController();
    let cancelTimer = (): void => {};
    const onAbort = (): void => entry.settle({ outcome: 'withdrawn', reason: 'client_disconnected' });
    let resolve!: (r: ApprovalResult) => void;
    const result = new Promise<ApprovalResult>((r) => {
      resolve = r;
    });
    const entry: Entry = {
      approval,
      settle: (r) => {
        if (this.#pending.get(approval.id) !== entry) return;
        this.#pending.delete(approval.id);
        this.#decided.set(approval.id, r.outcome);
        metrics.stepUpPending.dec();
        cancelTimer();
        signal.removeEventListener('abort', onAbort);
        webhookCall.abort();
        this.#notifyOutcome(approval, r);
        this.#o.onSettled?.(approval);
        resolve(r);
      },
    };
    this.#pending.set(approval.id, entry);
    metrics.stepUpPending.inc();
    this.#o.onPending?.(approval);
    cancelTimer = timer.set(this.#o.timeoutSeconds * 1000, () => entry.settle({ outcome: 'timeout' }));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    if (this.#webhook && this.#pending.has(approval.id)) this.#ask(entry, webhookCall.signal);
    return { approval, result };
  }

  /** A decision from a callback or the page; refuses unknown, used and mismatched ids. */
  decide(
    id: string,
    decision: {
      readonly decision: 'approved' | 'denied';
      readonly approver: string | undefined;
      readonly bodySha256: string;
      readonly via: DecisionVia;
    },
  ): DecideResult {
    const entry = this.#pending.get(id);
    if (!entry) return this.#decided.has(id) ? 'already_decided' : 'unknown';
    if (!safeEqual(decision.bodySha256.toLowerCase(), entry.approval.bodySha256)) return 'digest_mismatch';
    entry.settle({ outcome: decision.decision, approver: decision.approver, via: decision.via });
    return 'decided';
  }

  /** Withdraws everything still pending (shutdown). */
  close(): void {
    for (const entry of [...this.#pending.values()]) entry.settle({ outcome: 'withdrawn', reason: 'shutdown' });
  }

  #ask(entry: Entry, signal: AbortSignal): void {
    const a = entry.approval;
    const event = {
      type: 'step_up.requested',
      id: a.id,
      route: a.route,
      scopes: a.scopes,
      sub: a.sub ?? null,
      actor: a.actor ?? null,
      method: a.method,
      path: a.path,
      mcpTools: a.mcpTools,
      bodySha256: a.bodySha256,
      reason: a.reason ?? null,
      trigger: a.trigger,
      requestId: a.requestId,
      createdAt: new Date(a.createdAt).toISOString(),
      expiresAt: new Date(a.expiresAt).toISOString(),
      decisionPath: `/step-up/${a.id}`,
      decisionUrl:
        this.#o.callbackBaseUrl === undefined ? null : `${this.#o.callbackBaseUrl.replace(/\/+$/, '')}/step-up/${a.id}`,
    };
    postWebhook(this.#webhook!, event, signal).then(
      (answer) => {
        if (answer.kind === 'pending') return;
        if (answer.bodySha256 !== undefined && !safeEqual(answer.bodySha256.toLowerCase(), a.bodySha256)) {
          entry.settle({ outcome: 'error', detail: 'approval webhook answered for another request body digest' });
          return;
        }
        entry.settle({ outcome: answer.decision, approver: answer.approver, via: 'webhook' });
      },
      (err: unknown) => {
        // After settling, the call is aborted on purpose: nothing to report.
        if (!signal.aborted)
          entry.settle({ outcome: 'error', detail: `approval webhook failed: ${(err as Error).message}` });
      },
    );
  }

  /** Tells the webhook how an approval it was asked about ended, unless it decided itself. */
  #notifyOutcome(a: PendingApproval, r: ApprovalResult): void {
    if (!this.#webhook) return;
    let event: Record<string, unknown>;
    switch (r.outcome) {
      case 'approved':
      case 'denied':
        if (r.via === 'webhook') return;
        event = { type: 'step_up.decided', id: a.id, decision: r.outcome, approver: r.approver ?? null, via: r.via };
        break;
      case 'timeout':
        event = { type: 'step_up.withdrawn', id: a.id, reason: 'timeout' };
        break;
      case 'withdrawn':
        event = { type: 'step_up.withdrawn', id: a.id, reason: r.reason };
        break;
      case 'error':
        return;
    }
    postWebhook(this.#webhook, event, AbortSignal.timeout(NOTICE_TIMEOUT_MS)).catch((err: unknown) => {
      this.#o.logger.warn(
        { approvalId: a.id, type: event.type, err: (err as Error).message },
        'step-up notice to the approval webhook failed',
      );
    });
  }
}
