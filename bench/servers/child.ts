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
export function serve(ready: { url: string; [k: string]: unknown }, ops: Record<string, (arg: unknown) => unknown> = {}, close?: () => Promise<void>): void {
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
