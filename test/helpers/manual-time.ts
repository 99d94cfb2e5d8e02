import type { Clock } from '../../src/pipeline/clock.js';
import type { Timer } from '../../src/pipeline/timer.js';

export interface ManualTime extends Clock, Timer {
  /** Delays of the timers armed and not yet fired or cancelled, in arming order. */
  readonly pending: number[];
  /** Moves the clock on and runs every timer that is due by then, in due order. */
  advance(ms: number): void;
}

/** A clock and a timer the test moves by hand: a timer armed for `ms` fires once the clock has moved `ms` on. */
export function manualTime(start = Date.now()): ManualTime {
  let now = start;
  const timers = new Map<object, { due: number; ms: number; fn: () => void }>();
  return {
    now: () => now,
    set(ms, fn) {
      const key = {};
      timers.set(key, { due: now + ms, ms, fn });
      return () => timers.delete(key);
    },
    get pending() {
      return [...timers.values()].map((t) => t.ms);
    },
    advance(ms) {
      now += ms;
      const due = [...timers.entries()].filter(([, t]) => t.due <= now).sort(([, a], [, b]) => a.due - b.due);
      for (const [key, t] of due) {
        if (!timers.delete(key)) continue;
        t.fn();
      }
    },
  };
}
