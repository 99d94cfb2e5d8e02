/** Something with a deadline; the list links it in place (no allocation per deadline). */
export interface DeadlineEntry {
  /** Called once when the deadline passes while the entry is still listed. */
  deadlinePassed(): void;
  /** Links and due time, owned by the list: start undefined. */
  deadlineDue: number;
  deadlinePrev: DeadlineEntry | undefined;
  deadlineNext: DeadlineEntry | undefined;
  deadlineList: DeadlineList | undefined;
}

export interface DeadlineTimers {
  /** Milliseconds, monotonic. */
  now(): number;
  set(fire: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const REAL_TIMERS: DeadlineTimers = {
  now: () => performance.now(),
  // Unreferenced: the requests waiting keep the process alive through their sockets, not this timer.
  set: (fire, ms) => setTimeout(fire, ms).unref(),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Deadlines that all have the same length, in one list with one timer: entries are added in
 * time order, so the list is sorted by due time and the timer only ever waits for its head.
 * Adding and removing an entry is O(1) and allocates nothing (the entry carries its links),
 * where a timer per request allocates and registers one each time. The timer is left running when
 * the list empties (one request at a time would otherwise set and clear one per request); when it
 * fires with nothing due it is set again for the head, if any.
 */
export class DeadlineList {
  readonly #ms: number;
  readonly #timers: DeadlineTimers;
  #head: DeadlineEntry | undefined;
  #tail: DeadlineEntry | undefined;
  #timer: unknown;
  readonly #fire = (): void => this.#expire();

  constructor(ms: number, timers: DeadlineTimers = REAL_TIMERS) {
    this.#ms = ms;
    this.#timers = timers;
  }

  /** Lists `entry`, due `ms` from now (removed first if it was listed). */
  add(entry: DeadlineEntry): void {
    if (entry.deadlineList !== undefined) entry.deadlineList.remove(entry);
    entry.deadlineDue = this.#timers.now() + this.#ms;
    entry.deadlineList = this;
    entry.deadlinePrev = this.#tail;
    entry.deadlineNext = undefined;
    if (this.#tail === undefined) this.#head = entry;
    else this.#tail.deadlineNext = entry;
    this.#tail = entry;
    if (this.#timer === undefined) this.#arm(entry.deadlineDue);
  }

  /** Takes `entry` off the list (its deadline no longer applies); a no-op when it is not listed here. */
  remove(entry: DeadlineEntry): void {
    if (entry.deadlineList !== this) return;
    const { deadlinePrev: prev, deadlineNext: next } = entry;
    if (prev === undefined) this.#head = next;
    else prev.deadlineNext = next;
    if (next === undefined) this.#tail = prev;
    else next.deadlinePrev = prev;
    entry.deadlinePrev = undefined;
    entry.deadlineNext = undefined;
    entry.deadlineList = undefined;
  }

  /** Stops the timer (the forwarder is closing). */
  close(): void {
    if (this.#timer !== undefined) this.#timers.clear(this.#timer);
    this.#timer = undefined;
  }

  get size(): number {
    let n = 0;
    for (let e = this.#head; e !== undefined; e = e.deadlineNext) n++;
    return n;
  }

  #arm(due: number): void {
    this.#timer = this.#timers.set(this.#fire, Math.max(1, Math.ceil(due - this.#timers.now())));
  }

  #expire(): void {
    this.#timer = undefined;
    const now = this.#timers.now();
    // Node's timers have millisecond resolution: allow for a fire a fraction of one early.
    for (let e = this.#head; e !== undefined && e.deadlineDue <= now + 0.5; e = this.#head) {
      this.remove(e);
      e.deadlinePassed();
    }
    if (this.#head !== undefined && this.#timer === undefined) this.#arm(this.#head.deadlineDue);
  }
}
