/** A request waiting at the gate: an object, so a request needs no callback made for it. */
export interface GateWaiter {
  admitted(): void;
}

/**
 * Admits at most `limit` requests at a time to one upstream origin's pool; the rest wait here, in
 * arrival order. undici's own queue cannot be left by a request that is no longer wanted (its
 * deadline passed, its client went away) until a connection frees up; this one can, at once: a
 * queued request must neither outlive its timeout nor hold a place.
 */
export class OriginGate {
  readonly #limit: number;
  #active = 0;
  readonly #waiting = new Set<GateWaiter>();

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Admits `waiter` now if a slot is free, else when one frees up (unless removed first). */
  enter(waiter: GateWaiter): void {
    if (this.#active < this.#limit) {
      this.#active++;
      waiter.admitted();
      return;
    }
    this.#waiting.add(waiter);
  }

  /** Takes a waiting request out of the queue; a no-op once it was admitted. */
  remove(waiter: GateWaiter): void {
    this.#waiting.delete(waiter);
  }

  /** The admitted request finished (its dispatch ended): the next waiting one takes its slot. */
  leave(): void {
    // A Set iterates in insertion order: the oldest waiting request goes first.
    for (const next of this.#waiting) {
      this.#waiting.delete(next);
      next.admitted();
      return;
    }
    this.#active--;
  }

  get active(): number {
    return this.#active;
  }

  get waiting(): number {
    return this.#waiting.size;
  }
}
