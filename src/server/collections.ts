import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * V8's `gc()`, reachable only with --expose-gc: set that flag for one new context, take the function,
 * then unset the flag again. The function keeps working.
 */
function exposedGc(): (options?: { type: 'major' | 'minor' }) => void {
  setFlagsFromString('--expose-gc');
  try {
    return runInNewContext('gc') as (options?: { type: 'major' | 'minor' }) => void;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

/**
 * One full collection once the proxy listens. Loading the modules and the config fills V8's young
 * generation to its maximum, and nothing gives those pages back while the proxy is idle: V8's memory
 * reducer, which shrinks the heap when allocation is low, starts only after a full collection, and
 * start-up has none. Measured on Node 24 with --max-semi-space-size=16: idle RSS 95 -> 80 MB about 10 s
 * later (the reducer's own rounds). Under load the young generation grows back as it needs.
 */
export function collectStartupGarbage(): void {
  exposedGc()();
}

/** A young-generation collection (a scavenge), for proxy/streamed-body-garbage.ts. */
export function youngCollector(): () => void {
  const gc = exposedGc();
  return () => gc({ type: 'minor' });
}
