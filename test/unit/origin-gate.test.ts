import { describe, expect, it } from 'vitest';
import { OriginGate } from '../../src/proxy/origin-gate.js';

describe('OriginGate', () => {
  it('admits up to its limit at once, then in arrival order as slots free up', () => {
    const gate = new OriginGate(2);
    const admitted: string[] = [];
    const admit = (name: string) => ({
      admitted: (): void => {
        admitted.push(name);
      },
    });
    for (const name of ['a', 'b', 'c', 'd']) gate.enter(admit(name));
    expect(admitted).toEqual(['a', 'b']);
    expect(gate.waiting).toBe(2);
    gate.leave();
    expect(admitted).toEqual(['a', 'b', 'c']);
    expect(gate.active).toBe(2);
    gate.leave();
    gate.leave();
    gate.leave();
    expect(admitted).toEqual(['a', 'b', 'c', 'd']);
    expect(gate.active).toBe(0);
  });

  it('a removed waiter never runs and holds no place', () => {
    const gate = new OriginGate(1);
    const admitted: string[] = [];
    const waiter = (name: string) => ({
      admitted: (): void => {
        admitted.push(name);
      },
    });
    const first = waiter('first');
    const gone = waiter('gone');
    const next = waiter('next');
    gate.enter(first);
    gate.enter(gone);
    gate.enter(next);
    gate.remove(gone);
    gate.leave();
    expect(admitted).toEqual(['first', 'next']);
    expect(gate.waiting).toBe(0);
  });
});
