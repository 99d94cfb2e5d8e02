import { hash } from 'node:crypto';
import type { Logger } from 'pino';
import { normalizeEmail, type SubjectTarget } from '../auth/subject-index.js';
import type { Fleet, FleetMessage } from '../fleet/fleet.js';
import type { StoredRevocation } from '../fleet/revocation-store.js';
import type { Metrics } from '../observability/metrics.js';
import type { Clock } from '../pipeline/clock.js';
import type { Revocation, RevocationEvent, RevocationSource } from './revocation-list.js';
import type { RevokeInput, Revoker } from './revoker.js';

/** What the admin API and the SSF receiver tell the fleet after applying a revocation locally. */
export interface RevocationSharing {
  /** Stores (when it refuses) and publishes it; 'queued' when Redis is unavailable. */
  shared(input: RevokeInput, revocation: Revocation | undefined): Promise<FleetDelivery>;
  /** Publishes a lift (DELETE /revocations) and removes the stored entry. */
  lifted(target: SubjectTarget, upTo: number): Promise<FleetDelivery>;
  /** Whether a pod of the fleet applied the SET with this jti (false when Redis is unavailable). */
  appliedElsewhere(jti: string): Promise<boolean>;
  /** Records that this SET was applied, for the replay window (best effort). */
  markApplied(jti: string): Promise<void>;
}

export type FleetDelivery = 'published' | 'queued';

export interface RevocationFleetDeps {
  readonly fleet: Fleet;
  readonly revoker: Revoker;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly logger: Logger;
  /** revocation.retainSeconds in ms: the TTL of stored entries and lift markers. */
  readonly retainMs: number;
  /** Events kept for publishing while Redis is unavailable; past it the oldest are dropped. */
  readonly maxQueued?: number;
  /** How long an applied SET's jti is remembered fleet-wide: its replay window (ssf.maxAgeSeconds) and more. */
  readonly setMemoryMs?: number;
}

/** The wire form of a revocation (fleet message body and stored value). */
interface RevocationBody {
  readonly target: SubjectTarget;
  readonly revokedAt: number;
  readonly source: RevocationSource;
  readonly event: RevocationEvent;
  readonly refuse: boolean;
  readonly jti?: string | undefined;
  /** The pod that accepted it. */
  readonly pod?: string | undefined;
}

interface LiftBody {
  readonly target: SubjectTarget;
  readonly upTo: number;
}

type Pending =
  | { readonly kind: 'revocation'; readonly at: number; readonly body: RevocationBody }
  | { readonly kind: 'lift'; readonly at: number; readonly body: LiftBody };

const DEFAULT_MAX_QUEUED = 10_000;
/** ssf.maxAgeSeconds' default (300 s) plus the 30 s clock tolerance and a margin. */
const DEFAULT_SET_MEMORY_MS = 400_000;
/** Entries stored at once while restoring the local list after a reconnect. */
const RESTORE_BATCH = 100;
const MAX_ID_LENGTH = 1024;
const SOURCES: ReadonlySet<string> = new Set(['admin', 'ssf']);
const EVENTS: ReadonlySet<string> = new Set([
  'session_revoked',
  'credential_change',
  'token_claims_change',
  'assurance_level_change',
  'admin',
]);

/**
 * Revocations fleet-wide (docs/fleet.md "Revocations"). A revocation accepted here is applied here
 * first, then stored in Redis with its retention as TTL and published before the caller answers;
 * revocations published by other pods are applied through the same local revoker. While Redis is
 * unavailable accepted events are queued (bounded); on every (re)connection the queue is published,
 * the local list is stored again (so a Redis that came back empty gets it back), and the stored list
 * is read. Until the first read succeeds the proxy is not ready.
 */
export class RevocationFleet implements RevocationSharing {
  readonly #d: RevocationFleetDeps;
  readonly #maxQueued: number;
  readonly #queue: Pending[] = [];
  #flushing: Promise<void> | undefined;
  #loaded = false;
  #lastError: string | undefined;
  readonly #loadedOnce: Promise<void>;
  #resolveLoaded: () => void = () => undefined;

  constructor(deps: RevocationFleetDeps) {
    this.#d = deps;
    this.#maxQueued = deps.maxQueued ?? DEFAULT_MAX_QUEUED;
    this.#loadedOnce = new Promise((resolve) => {
      this.#resolveLoaded = resolve;
    });
    deps.fleet.on('revocation', (m) => this.#applyRevocation(m));
    deps.fleet.on('lift', (m) => this.#applyLift(m));
    deps.fleet.onConnected(() => this.#catchUp());
    deps.metrics.fleetQueued.set(0);
  }

  /** Why the proxy is not ready yet (readiness check `fleet`), or undefined once the list was read. */
  readinessReason(): string | undefined {
    if (this.#loaded) return undefined;
    const { fleet } = this.#d;
    const why = this.#lastError ?? (fleet.connected ? 'reading' : (fleet.lastError ?? 'connecting'));
    return `revocation list not read from Redis yet (${why})`;
  }

  /** Resolves once the stored list was read, or after `ms`, whichever is first. */
  waitLoaded(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      t.unref();
      void this.#loadedOnce.then(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  get queued(): number {
    return this.#queue.length;
  }

  shared(input: RevokeInput, revocation: Revocation | undefined): Promise<FleetDelivery> {
    const body: RevocationBody = {
      target: input.target,
      revokedAt: revocation?.revokedAt ?? input.revokedAt,
      source: input.source,
      event: input.event,
      refuse: input.refuse,
      jti: input.jti,
      pod: this.#d.fleet.pod,
    };
    return this.#send({ kind: 'revocation', at: this.#d.clock.now(), body });
  }

  appliedElsewhere(jti: string): Promise<boolean> {
    return this.#d.fleet.isMarked(appliedSetName(jti));
  }

  async markApplied(jti: string): Promise<void> {
    try {
      await this.#d.fleet.markOnce(appliedSetName(jti), this.#setMemoryMs);
    } catch (err) {
      this.#d.logger.debug({ err: (err as Error).message, jti }, 'fleet: applied SET not recorded');
    }
  }

  lifted(target: SubjectTarget, upTo: number): Promise<FleetDelivery> {
    return this.#send({ kind: 'lift', at: this.#d.clock.now(), body: { target, upTo } });
  }

  async #send(p: Pending): Promise<FleetDelivery> {
    // Behind a queue the event waits its turn, so that a lift never overtakes its revocation.
    if (this.#queue.length === 0 && this.#d.fleet.connected) {
      try {
        await this.#deliver(p);
        return 'published';
      } catch (err) {
        this.#d.logger.warn({ err: (err as Error).message, kind: p.kind }, 'fleet: publishing failed; queued');
      }
    }
    this.#enqueue(p);
    if (this.#d.fleet.connected) void this.#flush().catch(() => undefined);
    return 'queued';
  }

  #enqueue(p: Pending): void {
    if (this.#queue.length >= this.#maxQueued) {
      this.#queue.shift();
      this.#d.metrics.fleetEvents.inc({ kind: p.kind, direction: 'dropped' });
      this.#d.logger.warn({ maxQueued: this.#maxQueued }, 'fleet: queue full; the oldest event is dropped');
    }
    this.#queue.push(p);
    this.#d.metrics.fleetEvents.inc({ kind: p.kind, direction: 'queued' });
    this.#d.metrics.fleetQueued.set(this.#queue.length);
  }

  async #deliver(p: Pending): Promise<void> {
    const store = this.#d.fleet.revocations;
    if (store === undefined) throw new Error('the fleet link is not open');
    if (p.kind === 'lift') {
      await store.lift(subjectId(p.body.target), p.body.upTo, this.#d.retainMs);
      await this.#d.fleet.publish(p.kind, p.at, { ...p.body });
      return;
    }
    // One script: stored, the SSF event marked as applied fleet-wide, and published, or none of it.
    const { jti } = p.body;
    await store.storeAndPublish(
      p.body.refuse ? this.#stored(p.body) : undefined,
      this.#d.clock.now(),
      this.#d.fleet.envelope('revocation', p.at, { ...p.body }),
      jti === undefined
        ? undefined
        : { key: this.#d.fleet.onceKey(appliedSetName(jti)), value: this.#d.fleet.pod, ttlMs: this.#setMemoryMs },
      subjectId(p.body.target),
    );
    this.#d.fleet.published('revocation');
  }

  get #setMemoryMs(): number {
    return this.#d.setMemoryMs ?? DEFAULT_SET_MEMORY_MS;
  }

  #stored(body: RevocationBody): StoredRevocation {
    return {
      id: subjectId(body.target),
      revokedAt: body.revokedAt,
      expiresAt: body.revokedAt + this.#d.retainMs,
      value: JSON.stringify(body),
    };
  }

  /** Publishes the queue in order; one run at a time. */
  #flush(): Promise<void> {
    if (this.#flushing !== undefined) return this.#flushing;
    const run = this.#drain().finally(() => {
      if (this.#flushing === run) this.#flushing = undefined;
    });
    this.#flushing = run;
    return run;
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0 && this.#d.fleet.connected) {
      await this.#deliver(this.#queue[0]!);
      this.#queue.shift();
      this.#d.metrics.fleetQueued.set(this.#queue.length);
    }
  }

  /** On every (re)connection: publish the queue, store the local list again, read the stored one. */
  async #catchUp(): Promise<void> {
    const { fleet, revoker, clock, logger } = this.#d;
    try {
      const published = this.#queue.length;
      await this.#flush();
      const store = fleet.revocations!;
      const local = revoker.list.list();
      const kept = new Set<string>();
      for (let i = 0; i < local.length; i += RESTORE_BATCH) {
        await Promise.all(
          local.slice(i, i + RESTORE_BATCH).map((r) =>
            store.store(
              this.#stored({
                target: r.target,
                revokedAt: r.revokedAt,
                source: r.source,
                event: r.event,
                refuse: true,
              }),
              clock.now(),
            ),
          ),
        );
      }
      let applied = 0;
      for (const value of await store.load(clock.now())) {
        const body = parseRevocation(value);
        if (body === undefined) continue;
        kept.add(subjectId(body.target));
        if (this.#apply(body, undefined)) applied++;
      }
      // Stored again above unless a lift (or a later revocation, kept) covers it: lifted while away.
      let lifted = 0;
      for (const r of local) {
        if (!kept.has(subjectId(r.target)) && r.expiresAt > clock.now() && revoker.lift(r.target, r.revokedAt, 'fleet'))
          lifted++;
      }
      this.#lastError = undefined;
      if (!this.#loaded) {
        this.#loaded = true;
        this.#resolveLoaded();
      }
      logger.info({ published, applied, lifted }, 'fleet: revocation list read from Redis');
    } catch (err) {
      this.#lastError = (err as Error).message;
      throw err;
    }
  }

  /** Applies a revocation from another pod (or the stored list); false when already known. */
  #apply(body: RevocationBody, fromPod: string | undefined): boolean {
    const { revoker } = this.#d;
    if (body.refuse) {
      const known = revoker.list.find(body.target);
      if (known !== undefined && known.revokedAt >= body.revokedAt && known.expiresAt > this.#d.clock.now())
        return false;
    }
    revoker.revoke({
      target: body.target,
      revokedAt: body.revokedAt,
      source: body.source,
      event: body.event,
      refuse: body.refuse,
      jti: body.jti,
      fromPod: fromPod ?? body.pod ?? 'fleet',
    });
    return true;
  }

  #applyRevocation(m: FleetMessage): void {
    const body = validRevocation(m.body);
    if (body === undefined) throw new Error('malformed revocation');
    this.#apply(body, m.pod);
    this.#observe('revocation', m.at);
  }

  #applyLift(m: FleetMessage): void {
    const target = validTarget(m.body.target);
    const upTo = m.body.upTo;
    if (target === undefined || typeof upTo !== 'number') throw new Error('malformed lift');
    this.#d.revoker.lift(target, upTo, m.pod);
    this.#observe('lift', m.at);
  }

  #observe(kind: 'revocation' | 'lift', at: number): void {
    const seconds = Math.max(0, this.#d.clock.now() - at) / 1000;
    this.#d.metrics.fleetApplyDuration.observe({ kind }, seconds);
  }
}

/** The fleet-wide marker of an applied SSF event, by its hashed jti. */
function appliedSetName(jti: string): string {
  return `set:${hash('sha256', jti, 'base64url')}`;
}

/** A stable key for a subject; a hash, so no email address or subject id is in a Redis key name. */
export function subjectId(target: SubjectTarget): string {
  const parts =
    target.kind === 'email' ? ['email', normalizeEmail(target.email)] : ['sub', target.sub, target.iss ?? ''];
  return hash('sha256', JSON.stringify(parts), 'base64url');
}

function parseRevocation(value: string): RevocationBody | undefined {
  try {
    return validRevocation(JSON.parse(value));
  } catch {
    return undefined;
  }
}

function validRevocation(value: unknown): RevocationBody | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const b = value as Record<string, unknown>;
  const target = validTarget(b.target);
  if (target === undefined) return undefined;
  if (typeof b.revokedAt !== 'number' || !Number.isFinite(b.revokedAt)) return undefined;
  if (typeof b.source !== 'string' || !SOURCES.has(b.source)) return undefined;
  if (typeof b.event !== 'string' || !EVENTS.has(b.event)) return undefined;
  if (typeof b.refuse !== 'boolean') return undefined;
  return {
    target,
    revokedAt: b.revokedAt,
    source: b.source as RevocationSource,
    event: b.event as RevocationEvent,
    refuse: b.refuse,
    jti: typeof b.jti === 'string' ? b.jti.slice(0, MAX_ID_LENGTH) : undefined,
    pod: typeof b.pod === 'string' ? b.pod.slice(0, 253) : undefined,
  };
}

function validTarget(value: unknown): SubjectTarget | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const t = value as Record<string, unknown>;
  const ok = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_ID_LENGTH;
  if (t.kind === 'email') return ok(t.email) ? { kind: 'email', email: t.email } : undefined;
  if (t.kind !== 'sub' || !ok(t.sub)) return undefined;
  if (t.iss !== undefined && !ok(t.iss)) return undefined;
  return { kind: 'sub', sub: t.sub, iss: t.iss };
}
