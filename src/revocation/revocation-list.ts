import { normalizeEmail, type SubjectTarget } from '../auth/subject-index.js';
import { ProxyError } from '../errors.js';
import type { Clock } from '../pipeline/clock.js';

export type RevocationSource = 'admin' | 'ssf';
/** Bounded metric label: CAEP event names (docs/revocation.md), or `admin`. */
export type RevocationEvent =
  | 'session_revoked'
  | 'credential_change'
  | 'token_claims_change'
  | 'assurance_level_change'
  | 'admin';

export interface Revocation {
  readonly target: SubjectTarget;
  /** User tokens with `iat` at or before this (epoch ms) are refused. */
  readonly revokedAt: number;
  /** Dropped from here on: no token issued before `revokedAt` is expected to live this long. */
  readonly expiresAt: number;
  readonly source: RevocationSource;
  readonly event: RevocationEvent;
}

/** The claims of a user token that a revocation is matched against (decoded, see docs/revocation.md). */
export interface TokenClaims {
  readonly sub?: string | undefined;
  readonly iss?: string | undefined;
  /** Epoch seconds. */
  readonly iat?: number | undefined;
  readonly email?: string | undefined;
}

export interface RevocationListOptions {
  readonly clock: Clock;
  /** How long an entry refuses old tokens (revocation.retainSeconds). */
  readonly retainMs: number;
  readonly maxEntries: number;
}

/**
 * Active revocations: per user, the time before which their user tokens are refused. Bounded:
 * expired entries are swept when the list is full, and a revocation that does not fit is refused
 * (503) rather than dropping an active one.
 */
export class RevocationList {
  readonly #o: RevocationListOptions;
  /** `sub` → entries (one per distinct `iss`, plus one without). */
  readonly #bySub = new Map<string, Revocation[]>();
  readonly #byEmail = new Map<string, Revocation>();
  #count = 0;

  constructor(options: RevocationListOptions) {
    this.#o = options;
  }

  get size(): number {
    return this.#count;
  }

  /** Adds or extends the revocation of `target` at `revokedAt` (epoch ms). */
  add(target: SubjectTarget, revokedAt: number, source: RevocationSource, event: RevocationEvent): Revocation {
    const existing = this.#find(target);
    const at = Math.max(revokedAt, existing?.revokedAt ?? revokedAt);
    const entry: Revocation = { target, revokedAt: at, expiresAt: at + this.#o.retainMs, source, event };
    if (existing === undefined) {
      if (this.#count >= this.#o.maxEntries) this.sweep();
      if (this.#count >= this.#o.maxEntries) {
        throw new ProxyError('temporarily_unavailable', 'the revocation list is full', {
          detail: `revocation.maxEntries (${this.#o.maxEntries}) active revocations`,
          retryAfterSeconds: 60,
        });
      }
      this.#count++;
    }
    this.#store(entry, existing);
    return entry;
  }

  /** The active revocation that refuses a token with these claims, if any. */
  check(claims: TokenClaims): Revocation | undefined {
    if (this.#count === 0) return undefined;
    const now = this.#o.clock.now();
    if (claims.sub !== undefined) {
      for (const r of this.#bySub.get(claims.sub) ?? []) if (refuses(r, claims, now)) return r;
    }
    if (claims.email !== undefined) {
      const r = this.#byEmail.get(normalizeEmail(claims.email));
      if (r !== undefined && refuses(r, claims, now)) return r;
    }
    return undefined;
  }

  /** Active revocations, oldest first. */
  list(): Revocation[] {
    const now = this.#o.clock.now();
    const all = [...[...this.#bySub.values()].flat(), ...this.#byEmail.values()];
    return all.filter((r) => r.expiresAt > now).sort((a, b) => a.revokedAt - b.revokedAt);
  }

  /** Drops expired entries; returns how many. */
  sweep(): number {
    const now = this.#o.clock.now();
    let dropped = 0;
    for (const [sub, entries] of this.#bySub) {
      const kept = entries.filter((r) => r.expiresAt > now);
      dropped += entries.length - kept.length;
      if (kept.length === 0) this.#bySub.delete(sub);
      else if (kept.length !== entries.length) this.#bySub.set(sub, kept);
    }
    for (const [email, r] of this.#byEmail) {
      if (r.expiresAt <= now) {
        this.#byEmail.delete(email);
        dropped++;
      }
    }
    this.#count -= dropped;
    return dropped;
  }

  /** The active or expired entry of exactly this subject (same `sub` and `iss`, or same email). */
  find(target: SubjectTarget): Revocation | undefined {
    return this.#find(target);
  }

  /** Lifts the revocation of `target` if it was issued at or before `upTo` (epoch ms); true if one was. */
  remove(target: SubjectTarget, upTo: number): boolean {
    const existing = this.#find(target);
    if (existing === undefined || existing.revokedAt > upTo) return false;
    if (target.kind === 'email') this.#byEmail.delete(normalizeEmail(target.email));
    else {
      const kept = (this.#bySub.get(target.sub) ?? []).filter((r) => r !== existing);
      if (kept.length === 0) this.#bySub.delete(target.sub);
      else this.#bySub.set(target.sub, kept);
    }
    this.#count--;
    return true;
  }

  #find(target: SubjectTarget): Revocation | undefined {
    if (target.kind === 'email') return this.#byEmail.get(normalizeEmail(target.email));
    return this.#bySub.get(target.sub)?.find((r) => r.target.kind === 'sub' && r.target.iss === target.iss);
  }

  #store(entry: Revocation, existing: Revocation | undefined): void {
    const { target } = entry;
    if (target.kind === 'email') {
      this.#byEmail.set(normalizeEmail(target.email), entry);
      return;
    }
    const entries = (this.#bySub.get(target.sub) ?? []).filter((r) => r !== existing);
    entries.push(entry);
    this.#bySub.set(target.sub, entries);
  }
}

/**
 * A token is refused while the entry is active when its issuer matches (or either side names none)
 * and it was issued at or before the revocation. A token without `iat` cannot show it is newer, so
 * it is refused (docs/revocation.md). `iat` has one-second resolution: a token issued in the same
 * second as the event is refused too.
 */
export function refuses(r: Revocation, claims: TokenClaims, now: number): boolean {
  if (r.expiresAt <= now) return false;
  if (!issuerMatches(r.target, claims)) return false;
  return claims.iat === undefined || claims.iat * 1000 <= r.revokedAt;
}

/** A `sub` target with an `iss` names only tokens of that issuer, or tokens that name none. */
export function issuerMatches(target: SubjectTarget, claims: TokenClaims): boolean {
  return !(target.kind === 'sub' && target.iss !== undefined && claims.iss !== undefined && target.iss !== claims.iss);
}
