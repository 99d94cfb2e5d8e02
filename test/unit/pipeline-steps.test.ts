import { describe, expect, it } from 'vitest';
import type { RequestContext } from '../../src/pipeline/context.js';
import { type PipelineDeps, prepare, STEPS, type Step, step, withStep } from '../../src/proxy/prepare.js';

/** The runner of the pipeline's step list (docs/design.md "Request pipeline"). */
describe('pipeline steps', () => {
  const deps = {} as PipelineDeps;
  const ctx = { id: 'r' } as RequestContext;

  it('runs steps that return no promise within the call, in order, and returns the context', () => {
    const ran: string[] = [];
    const steps = ['a', 'b', 'c'].map((name) => step(() => void ran.push(name)));
    expect(prepare(ctx, deps, steps)).toBe(ctx);
    expect(ran).toEqual(['a', 'b', 'c']);
  });

  it('waits for a step promise before the next step, and then resolves with the context', async () => {
    const ran: string[] = [];
    let release: () => void = () => {};
    const steps: Step[] = [
      step(() => void ran.push('a')),
      step(() => {
        ran.push('b');
        return new Promise<void>((resolve) => (release = resolve));
      }),
      step(() => void ran.push('c')),
    ];
    const result = prepare(ctx, deps, steps);
    expect(result).toBeInstanceOf(Promise);
    await Promise.resolve();
    expect(ran).toEqual(['a', 'b']);
    release();
    await expect(result).resolves.toBe(ctx);
    expect(ran).toEqual(['a', 'b', 'c']);
  });

  it('stops at the first step that throws or rejects', async () => {
    const ran: string[] = [];
    const boom = new Error('refused');
    const throwing = [
      step(() => {
        throw boom;
      }),
      step(() => void ran.push('after')),
    ];
    expect(() => prepare(ctx, deps, throwing)).toThrow(boom);
    const rejecting = [step(() => Promise.reject(boom)), step(() => void ran.push('after'))];
    await expect(prepare(ctx, deps, rejecting)).rejects.toBe(boom);
    expect(ran).toEqual([]);
  });

  it('inserts a step after an anchor of the list, and refuses an anchor that is not in it', () => {
    const added: Step = () => undefined;
    const anchor = STEPS[2] as Step;
    const steps = withStep(STEPS, added, anchor);
    expect(steps).toHaveLength(STEPS.length + 1);
    expect(steps[3]).toBe(added);
    expect(steps.filter((s) => s !== added)).toEqual(STEPS);
    expect(() => withStep(STEPS, added, () => undefined)).toThrow(/anchor/);
  });
});
