/** What the index knows of the user behind a cache entry (decoded from the user token). */
export interface IndexedSubject {
  readonly sub?: string | undefined;
  readonly iss?: string | undefined;
  readonly email?: string | undefined;
}

/** Whom a revocation or eviction names: a `sub` (optionally with its `iss`), or an email address. */
export type SubjectTarget =
  | { readonly kind: 'sub'; readonly sub: string; readonly iss?: string | undefined }
  | { readonly kind: 'email'; readonly email: string };

/**
 * Delegated-token cache keys by user (`sub`, `email`), so a revocation can evict every entry of a
 * user although the cache is keyed by token hashes (README "Revocation"). Fed by the token service
 * when an entry is stored and by the cache when one leaves it, so it never holds more keys than
 * the cache does.
 */
export class SubjectIndex {
  readonly #byKey = new Map<string, IndexedSubject>();
  readonly #bySub = new Map<string, Set<string>>();
  readonly #byEmail = new Map<string, Set<string>>();

  get size(): number {
    return this.#byKey.size;
  }

  add(key: string, subject: IndexedSubject): void {
    if (this.#byKey.has(key)) return;
    if (subject.sub === undefined && subject.email === undefined) return; // opaque token: nothing to match on
    // A copy of the three claims only: the caller's object may hold the raw user token.
    this.#byKey.set(key, { sub: subject.sub, iss: subject.iss, email: subject.email });
    if (subject.sub !== undefined) addTo(this.#bySub, subject.sub, key);
    if (subject.email !== undefined) addTo(this.#byEmail, normalizeEmail(subject.email), key);
  }

  remove(key: string): void {
    const subject = this.#byKey.get(key);
    if (subject === undefined) return;
    this.#byKey.delete(key);
    if (subject.sub !== undefined) removeFrom(this.#bySub, subject.sub, key);
    if (subject.email !== undefined) removeFrom(this.#byEmail, normalizeEmail(subject.email), key);
  }

  /**
   * Cache keys of `target`. A `sub` with an `iss` matches entries whose user token has that `iss`,
   * or none at all (such a token cannot be told apart, so it is evicted: an eviction only costs a
   * new exchange).
   */
  keysFor(target: SubjectTarget): string[] {
    if (target.kind === 'email') return [...(this.#byEmail.get(normalizeEmail(target.email)) ?? [])];
    const keys = this.#bySub.get(target.sub);
    if (keys === undefined) return [];
    if (target.iss === undefined) return [...keys];
    return [...keys].filter((k) => {
      const iss = this.#byKey.get(k)?.iss;
      return iss === undefined || iss === target.iss;
    });
  }
}

/** Email addresses compare case-insensitively here (RFC 9493 §3.2.2 leaves it to the issuer). */
export function normalizeEmail(email: string): string {
  return email.toLowerCase();
}

function addTo(map: Map<string, Set<string>>, id: string, key: string): void {
  let set = map.get(id);
  if (set === undefined) {
    set = new Set();
    map.set(id, set);
  }
  set.add(key);
}

function removeFrom(map: Map<string, Set<string>>, id: string, key: string): void {
  const set = map.get(id);
  if (set === undefined) return;
  set.delete(key);
  if (set.size === 0) map.delete(id);
}
