/**
 * Schedules the approval timeout. Injected (like the clock) so tests decide when time is up
 * instead of sleeping.
 */
export interface Timer {
  /** Runs `fn` after `ms`; returns a function that cancels it. */
  set(ms: number, fn: () => void): () => void;
}

export const realTimer: Timer = {
  set(ms, fn) {
    const t = setTimeout(fn, ms);
    // A pending approval alone must not keep the process alive at shutdown.
    t.unref();
    return () => clearTimeout(t);
  },
};
