import type { Logger } from 'pino';
import type { Fleet, FleetMessage } from '../fleet/fleet.js';
import type { Metrics } from '../observability/metrics.js';
import type { Clock } from '../pipeline/clock.js';
import type { ApprovalService, DecideResult, DecisionVia, PendingApproval } from './approvals.js';

/** A pending approval as the page lists it: `pod` names the pod holding it when it is not this one. */
export type ListedApproval = PendingApproval & { readonly pod?: string | undefined };

export interface Decision {
  readonly decision: 'approved' | 'denied';
  readonly approver: string | undefined;
  readonly bodySha256: string;
  readonly via: DecisionVia;
}

/** What the approval page and the decision callback read and decide through. */
export interface ApprovalInbox {
  /** Pending approvals; `localOnly` when the fleet's are unavailable (Redis down) or there is no fleet. */
  list(): Promise<{
    readonly pending: readonly ListedApproval[];
    readonly localOnly: boolean;
    readonly fleet: boolean;
  }>;
  decide(id: string, decision: Decision): Promise<DecideResult>;
}

/** Without `fleet`: this pod's approvals only. */
export function localInbox(approvals: ApprovalService): ApprovalInbox {
  return {
    list: async () => ({ pending: approvals.list(), localOnly: true, fleet: false }),
    decide: async (id, d) => approvals.decide(id, d),
  };
}

export interface FleetInboxDeps {
  readonly approvals: ApprovalService;
  readonly fleet: Fleet;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly logger: Logger;
}

const MAX_ID = 64;

/**
 * One approval inbox for the fleet (docs/fleet.md "Approvals"). Each pending approval is stored in
 * Redis with what the page shows (no token, no body) and removed when it settles. A decision on any
 * pod first claims the id in Redis (atomic: one decision per id fleet-wide), then settles it here
 * when held here, else is published to the holding pod, which settles it. While Redis is
 * unavailable the inbox is local-only.
 */
export class FleetInbox implements ApprovalInbox {
  readonly #d: FleetInboxDeps;

  constructor(deps: FleetInboxDeps) {
    this.#d = deps;
    deps.fleet.on('decision', (m) => this.#applyDecision(m));
    // Approvals asked for while Redis was unavailable join the fleet's inbox when it returns.
    // A decision published while this pod was away is in its claim: settle those first.
    deps.fleet.onConnected(async () => {
      await this.#settleClaimed();
      for (const a of deps.approvals.list()) this.pending(a);
    });
  }

  /** ApprovalService hook: a request started waiting here. */
  pending(a: PendingApproval): void {
    const store = this.#d.fleet.approvals;
    if (store === undefined || !this.#d.fleet.connected) return;
    const value = JSON.stringify({
      id: a.id,
      route: a.route,
      scopes: a.scopes,
      sub: a.sub,
      actor: a.actor,
      method: a.method,
      path: a.path,
      mcpTools: a.mcpTools,
      bodySha256: a.bodySha256,
      trigger: a.trigger,
      createdAt: a.createdAt,
      expiresAt: a.expiresAt,
      pod: this.#d.fleet.pod,
    });
    store.put(a.id, value, a.expiresAt, this.#d.clock.now()).then(
      () => this.#d.metrics.fleetEvents.inc({ kind: 'approval', direction: 'published' }),
      (err: unknown) =>
        this.#d.logger.warn({ err: (err as Error).message, approvalId: a.id }, 'fleet: approval not shared'),
    );
  }

  /** ApprovalService hook: it settled (decided, timed out, withdrawn). */
  settled(a: PendingApproval): void {
    const store = this.#d.fleet.approvals;
    if (store === undefined || !this.#d.fleet.connected) return;
    store.remove(a.id).catch(() => undefined);
  }

  async list(): Promise<{ pending: ListedApproval[]; localOnly: boolean; fleet: boolean }> {
    const local: ListedApproval[] = this.#d.approvals.list();
    const store = this.#d.fleet.approvals;
    if (store === undefined || !this.#d.fleet.connected) return { pending: local, localOnly: true, fleet: true };
    let values: string[];
    try {
      values = await store.list(this.#d.clock.now());
    } catch {
      return { pending: local, localOnly: true, fleet: true };
    }
    const held = new Set(local.map((a) => a.id));
    const remote = values.flatMap((v) => {
      const a = parseStored(v);
      return a === undefined || held.has(a.id) ? [] : [a];
    });
    const pending = [...local, ...remote].sort((x, y) => x.createdAt - y.createdAt);
    return { pending, localOnly: false, fleet: true };
  }

  async decide(id: string, d: Decision): Promise<DecideResult> {
    const { approvals, fleet } = this.#d;
    const store = fleet.approvals;
    const bodySha256 = d.bodySha256.toLowerCase();
    if (store === undefined || !fleet.connected) return approvals.decide(id, d);
    let claim: Awaited<ReturnType<typeof store.claim>>;
    try {
      const decider = { pod: fleet.pod, via: d.via, decision: d.decision, approver: d.approver };
      claim = await store.claim(id, bodySha256, JSON.stringify(decider));
    } catch (err) {
      this.#d.logger.warn({ err: (err as Error).message, approvalId: id }, 'fleet: claim failed; deciding locally');
      return approvals.decide(id, d);
    }
    switch (claim) {
      case 'claimed':
        if (approvals.get(id) !== undefined) return approvals.decide(id, d);
        await fleet.publish('decision', this.#d.clock.now(), {
          id,
          decision: d.decision,
          approver: d.approver,
          bodySha256,
          via: d.via,
        });
        return 'decided';
      case 'unknown':
        // Not in Redis (asked while it was unavailable): only the holding pod can decide it.
        return approvals.decide(id, d);
      default:
        return claim;
    }
  }

  async #settleClaimed(): Promise<void> {
    const store = this.#d.fleet.approvals;
    if (store === undefined) return;
    for (const a of this.#d.approvals.list()) {
      const claim = await store.claimOf(a.id);
      if (claim === undefined) continue;
      let c: Record<string, unknown>;
      try {
        c = JSON.parse(claim) as Record<string, unknown>;
      } catch {
        continue;
      }
      this.#settle({ ...c, id: a.id, bodySha256: a.bodySha256 }, typeof c.pod === 'string' ? c.pod : 'fleet');
    }
  }

  #applyDecision(m: FleetMessage): void {
    this.#settle(m.body, m.pod);
    this.#d.metrics.fleetApplyDuration.observe({ kind: 'decision' }, Math.max(0, this.#d.clock.now() - m.at) / 1000);
  }

  /** Settles a decision taken on another pod, if the approval is held here. */
  #settle(b: Record<string, unknown>, fromPod: string): void {
    if (typeof b.id !== 'string' || b.id.length > MAX_ID || this.#d.approvals.get(b.id) === undefined) return;
    if (b.decision !== 'approved' && b.decision !== 'denied') return;
    if (b.via !== 'page' && b.via !== 'callback') return;
    if (typeof b.bodySha256 !== 'string') return;
    const approver = typeof b.approver === 'string' ? `${b.approver.slice(0, 128)}` : undefined;
    const result = this.#d.approvals.decide(b.id, {
      decision: b.decision,
      approver,
      bodySha256: b.bodySha256,
      via: b.via,
    });
    this.#d.logger.info({ approvalId: b.id, result, fromPod }, 'fleet: step-up decision from another pod');
  }
}

function parseStored(value: string): ListedApproval | undefined {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(value) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const str = (x: unknown): x is string => typeof x === 'string';
  const strs = (x: unknown): x is string[] => Array.isArray(x) && x.every(str);
  if (!str(v.id) || !str(v.route) || !strs(v.scopes) || !str(v.method) || !str(v.path) || !str(v.bodySha256))
    return undefined;
  if (typeof v.createdAt !== 'number' || typeof v.expiresAt !== 'number' || !str(v.pod)) return undefined;
  return {
    id: v.id,
    route: v.route,
    scopes: v.scopes,
    sub: str(v.sub) ? v.sub : undefined,
    actor: str(v.actor) ? v.actor : undefined,
    method: v.method,
    path: v.path,
    mcpTools: strs(v.mcpTools) ? v.mcpTools : [],
    bodySha256: v.bodySha256,
    reason: undefined,
    trigger: v.trigger === 'challenge' ? 'challenge' : 'rule',
    requestId: '',
    createdAt: v.createdAt,
    expiresAt: v.expiresAt,
    pod: v.pod,
  };
}
