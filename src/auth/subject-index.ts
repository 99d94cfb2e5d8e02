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

/** The keys of one user: most users have one cache entry, kept as the key itself (no Set for it). */
type Keys = string | Set<string>;

/**
 * Delegated-token cache keys by user (`sub`, `email`), so a revocation can evict every entry of a
 * user although the cache is keyed by token hashes (docs/revocation.md). Fed by the token service
 * when an entry is stored and by the cache when one leaves it, so it never holds more keys than
 * the cache does.
 */
export class SubjectIndex {
  readonly #byKey = new Map<string, IndexedSubject>();
  readonly #bySub = new Map<string, Keys>();
  readonly #byEmail = new Map<string, Keys>();

  get size(): number {
    return this.#byKey.size;
  }

  add(key: string, subject: IndexedSubject): void {
    if (this.#byKey.has(key)) return;
    if (subject.sub === undefined && subject.email === undefined) return; // opaque token: nothing to match on
    // An object with the raw user token in it is never kept: then a copy of the three claims only.
    // One without (the token service's claims memo) is shared by all of the user's entries.
    const kept = 'token' in subject ? { sub: subject.sub, iss: subject.iss, email: subject.email } : subject;
    this.#byKey.set(key, kept);
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
    if (target.kind === 'email') return listOf(this.#byEmail.get(normalizeEmail(target.email)));
    const keys = listOf(this.#bySub.get(target.sub));
    if (target.iss === undefined) return keys;
    return keys.filter((k) => {
      const iss = this.#byKey.get(k)?.iss;
      return iss === undefined || iss === target.iss;
    });
  }
}

/** Email addresses compare case-insensitively here (RFC 9493 §3.2.2 leaves it to the issuer). */
export function normalizeEmail(email: string): string {
  return email.toLowerCase();
}

function listOf(keys: Keys | undefined): string[] {
  if (keys === undefined) return [];
  return typeof keys === 'string' ? [keys] : [...keys];
}

function addTo(map: Map<string, Keys>, id: string, key: string): void {
  const keys = map.get(id);
  if (keys === undefined) map.set(id, key);
  else if (typeof keys !== 'string') keys.add(key);
  else if (keys !== key) map.set(id, new Set([keys, key]));
}

function removeFrom(map: Map<string, Keys>, id: string, key: string): void {
  const keys = map.get(id);
  if (keys === undefined) return;
  if (typeof keys === 'string') {
    if (keys === key) map.delete(id);
    return;
  }
  keys.delete(key);
  // Back to the plain key once one is left (a Set costs more than the key it would hold).
  if (keys.size === 1) map.set(id, keys.values().next().value as string);
  else if (keys.size === 0) map.delete(id);
}
