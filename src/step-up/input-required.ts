import { hash } from 'node:crypto';
import type { McpRequestState } from '../mcp/state.js';
import type { Clock } from '../pipeline/clock.js';
import { LocalAnswer } from '../pipeline/local-answer.js';
import type { ApprovalResult, PendingApproval } from './approvals.js';

/**
 * Step-up, MCP-native (`stepUp.mcpMode: input-required`): instead of holding a 2026-07-28
 * `tools/call` while a person decides, the proxy answers it with an MRTR `InputRequiredResult`
 * (MCP basic/patterns/mrtr) carrying a URL-mode elicitation to the approval page. The agent's
 * retry names the approval in its `inputResponses`; it passes once a person approved it, once.
 */

/** Prefix of the `inputRequests` key the proxy mints: the rest is the approval id. */
export const APPROVAL_INPUT_KEY = 'io.github.delegate-proxy/step-up:';
const CAPABILITIES_KEY = 'io.modelcontextprotocol/clientCapabilities';
/** Approvals awaited or redeemable at once (the approval service holds at most 1000 pending). */
const MAX_HELD = 1000;

/** The one 2026-07-28 tools/call of a request that may be answered with an input request. */
export interface McpCall {
  readonly id: string | number;
  readonly name: string;
  /** SHA-256 (hex) of the tool name and arguments: what the approval is bound to. */
  readonly digest: string;
  /** The approval id named in `inputResponses`, when the call is a retry. */
  readonly approvalId: string | undefined;
}

/**
 * The call, when the request is a single 2026-07-28 `tools/call` whose client can follow a
 * URL-mode elicitation (it declared `elicitation.url`); else undefined (step-up holds instead).
 */
export function mcpCallOf(state: McpRequestState | undefined, body: Buffer | undefined): McpCall | undefined {
  const d = state?.decisions.length === 1 ? state.decisions[0] : undefined;
  if (d === undefined || !d.modern || d.method !== 'tools/call' || d.id === null || body === undefined)
    return undefined;
  // The body parsed already (policy step): read again for the params the decision did not keep.
  const params = (JSON.parse(body.toString('utf8')) as { params?: Record<string, unknown> }).params ?? {};
  const meta = params._meta as Record<string, unknown> | undefined;
  const elicitation = (meta?.[CAPABILITIES_KEY] as { elicitation?: { url?: unknown } } | undefined)?.elicitation;
  if (elicitation?.url === undefined || elicitation.url === null || typeof elicitation.url !== 'object')
    return undefined;
  const responses = params.inputResponses;
  let approvalId: string | undefined;
  if (responses !== null && typeof responses === 'object' && !Array.isArray(responses)) {
    const key = Object.keys(responses).find((k) => k.startsWith(APPROVAL_INPUT_KEY));
    approvalId = key?.slice(APPROVAL_INPUT_KEY.length);
  }
  const digest = hash('sha256', JSON.stringify([params.name, params.arguments ?? null]), 'hex');
  return { id: d.id, name: String(params.name), digest, approvalId };
}

/** The answer to the call: an InputRequiredResult asking the agent to open the approval page. */
export function inputRequiredAnswer(call: McpCall, approval: PendingApproval, pageUrl: string): LocalAnswer {
  const url = `${pageUrl}?id=${encodeURIComponent(approval.id)}`;
  return new LocalAnswer({
    jsonrpc: '2.0',
    id: call.id,
    result: {
      resultType: 'input_required',
      inputRequests: {
        [`${APPROVAL_INPUT_KEY}${approval.id}`]: {
          method: 'elicitation/create',
          params: {
            mode: 'url',
            message: `Approval needed to call ${call.name} with scopes ${approval.scopes.join(' ')}`,
            url,
          },
        },
      },
    },
  });
}

interface Held {
  readonly approval: PendingApproval;
  readonly result: Promise<ApprovalResult>;
  readonly sub: string | undefined;
  readonly route: string;
  readonly digest: string;
  /** Epoch ms of the decision; undefined while pending. */
  decidedAt: number | undefined;
}

/**
 * Approvals issued as input requests, until their retry redeems them (once) or they lapse. Bound
 * to the route, the user and the call's digest: a retry for anything else cannot use one.
 */
export class HeldApprovals {
  readonly #held = new Map<string, Held>();
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Keeps an approval for its retry. */
  add(approval: PendingApproval, result: Promise<ApprovalResult>, sub: string | undefined, digest: string): void {
    const held: Held = { approval, result, sub, route: approval.route, digest, decidedAt: undefined };
    this.#held.set(approval.id, held);
    void result.then(() => {
      held.decidedAt = this.#clock.now();
    });
  }

  /**
   * Takes the approval a retry names, when it was issued for this route, user and call (removed:
   * single use). Undefined otherwise: the retry is a new request.
   */
  take(id: string, route: string, sub: string | undefined, digest: string): Held | undefined {
    this.#sweep();
    const held = this.#held.get(id);
    if (held === undefined || held.route !== route || held.sub !== sub || held.digest !== digest) return undefined;
    this.#held.delete(id);
    return held;
  }

  /** Room for one more (else the caller holds the request as in the default mode). */
  hasRoom(): boolean {
    this.#sweep();
    return this.#held.size < MAX_HELD;
  }

  /** An approval decided longer ago than its own timeout can no longer be redeemed. */
  #sweep(): void {
    const now = this.#clock.now();
    for (const [id, h] of this.#held) {
      const window = h.approval.expiresAt - h.approval.createdAt;
      if (h.decidedAt !== undefined && now - h.decidedAt > window) this.#held.delete(id);
    }
  }
}
