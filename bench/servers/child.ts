import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

/** The orchestrator <-> server protocol: one `ready` message, then requests answered by `id`. */
export type ChildMessage =
  | { readonly type: 'ready'; readonly url: string; readonly [k: string]: unknown }
  | { readonly type: 'reply'; readonly id: number; readonly value: unknown; readonly error?: string };

export type Request = { readonly type: 'request'; readonly id: number; readonly op: string; readonly arg?: unknown };

/** Reads the JSON option object the orchestrator passed as argv[2]. */
export function childOptions<T>(): T {
  const raw = process.argv[2];
  if (raw === undefined) throw new Error('expected a JSON options argument');
  return JSON.parse(raw) as T;
}

/**
 * Announces readiness and serves requests from the orchestrator. The process exits when the
 * orchestrator goes away (IPC disconnect), so no server outlives a crashed run.
 */
export function serve(
  ready: { url: string; [k: string]: unknown },
  own: Record<string, (arg: unknown) => unknown> = {},
  close?: () => Promise<void>,
): void {
  const ops = { ...profilerOps(), ...own };
  const send = (m: ChildMessage): void => {
    process.send?.(m);
  };
  process.on('message', (m: Request) => {
    if (m?.type !== 'request') return;
    const op = ops[m.op];
    Promise.resolve()
      .then(() => {
        if (!op) throw new Error(`unknown op ${m.op}`);
        return op(m.arg);
      })
      .then(
        (value) => send({ type: 'reply', id: m.id, value }),
        (err: unknown) => send({ type: 'reply', id: m.id, value: null, error: String(err) }),
      );
  });
  process.on('disconnect', () => {
    const done = close ? close() : Promise.resolve();
    const timer = setTimeout(() => process.exit(0), 2000);
    timer.unref();
    done.finally(() => process.exit(0));
  });
  send({ type: 'ready', ...ready });
}

/**
 * The V8 CPU profiler (what `node --cpu-prof` uses), started and stopped around the measured window
 * only, so start-up and warm-up are not in the profile.
 */
function profilerOps(): Record<string, (arg: unknown) => unknown> {
  let session: Session | undefined;
  return {
    async profileStart() {
      session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 100 });
      await session.post('Profiler.start');
      return true;
    },
    async profileStop(arg: unknown) {
      if (!session) throw new Error('profiler not started');
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      session = undefined;
      writeFileSync(String(arg), JSON.stringify(profile));
      return String(arg);
    },
  };
}
