import { describe, expect, it } from 'vitest';
import { type DeadlineEntry, DeadlineList, type DeadlineTimers } from '../../src/proxy/deadlines.js';

/** A clock and timers the test moves by hand (the boundary: real time). */
function manualTimers() {
  let now = 0;
  const pending = new Map<number, { at: number; fire: () => void }>();
  let next = 1;
  const timers: DeadlineTimers = {
    now: () => now,
    set: (fire, ms) => {
      const id = next++;
      pending.set(id, { at: now + ms, fire });
      return id;
    },
    clear: (id) => {
      pending.delete(id as number);
    },
  };
  return {
    timers,
    pending: () => pending.size,
    advance(ms: number) {
      const until = now + ms;
      for (;;) {
        const due = [...pending.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
        if (due === undefined) break;
        now = due[1].at;
        pending.delete(due[0]);
        due[1].fire();
      }
      now = until;
    },
  };
}

function entry(name: string, fired: string[]): DeadlineEntry {
  return {
    deadlineDue: 0,
    deadlinePrev: undefined,
    deadlineNext: undefined,
    deadlineList: undefined,
    deadlinePassed: () => fired.push(name),
  };
}

describe('DeadlineList', () => {
  it('fires each entry once at its own deadline, in order, with one timer at a time', () => {
    const t = manualTimers();
    const list = new DeadlineList(100, t.timers);
    const fired: string[] = [];
    list.add(entry('a', fired));
    t.advance(30);
    list.add(entry('b', fired));
    t.advance(30);
    list.add(entry('c', fired));
    expect(t.pending()).toBe(1);
    t.advance(39);
    expect(fired).toEqual([]);
    t.advance(1); // 100: a
    expect(fired).toEqual(['a']);
    t.advance(29);
    expect(fired).toEqual(['a']);
    t.advance(1); // 130: b
    expect(fired).toEqual(['a', 'b']);
    t.advance(30); // 160: c
    expect(fired).toEqual(['a', 'b', 'c']);
    expect(list.size).toBe(0);
    expect(t.pending()).toBe(0);
  });

  it('a removed entry never fires; the timer outlives an empty list once, then stops', () => {
    const t = manualTimers();
    const list = new DeadlineList(50, t.timers);
    const fired: string[] = [];
    const a = entry('a', fired);
    const b = entry('b', fired);
    const c = entry('c', fired);
    list.add(a);
    list.add(b);
    list.add(c);
    list.remove(b); // middle
    list.remove(a); // head: the timer set for a fires early for c and is set again
    t.advance(50);
    expect(fired).toEqual(['c']);
    expect(t.pending()).toBe(0); // fired for c, nothing left: not set again
    list.add(a);
    list.remove(a);
    expect(t.pending()).toBe(1); // left running: it finds nothing and is not set again
    list.add(b); // a later entry reuses the running timer
    expect(t.pending()).toBe(1);
    t.advance(49);
    expect(fired).toEqual(['c']);
    t.advance(1);
    expect(fired).toEqual(['c', 'b']);
    expect(t.pending()).toBe(0);
    list.remove(a); // not listed: a no-op
    list.add(a);
    list.close();
    expect(t.pending()).toBe(0);
  });

  it('an entry may be listed again from inside its own callback (a retry)', () => {
    const t = manualTimers();
    const list = new DeadlineList(10, t.timers);
    let count = 0;
    const e: DeadlineEntry = {
      deadlineDue: 0,
      deadlinePrev: undefined,
      deadlineNext: undefined,
      deadlineList: undefined,
      deadlinePassed: () => {
        count++;
        if (count < 3) list.add(e);
      },
    };
    list.add(e);
    t.advance(100);
    expect(count).toBe(3);
    expect(list.size).toBe(0);
  });
});
