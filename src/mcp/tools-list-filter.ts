import type { JsonRpcId } from './jsonrpc.js';

/** Decides per tool name whether the user may see it listed. */
export type MayList = (tool: string) => boolean;

/**
 * Removes from tools/list results (the answers to `ids`) every tool the user may not see, and marks
 * them `cacheScope: "private"`. Works on one JSON-RPC message or a batch answer; returns undefined
 * when nothing changed, so the original bytes go out untouched.
 */
export function filterToolsListMessage(value: unknown, ids: ReadonlySet<JsonRpcId>, mayList: MayList): unknown {
  if (Array.isArray(value)) {
    let changed = false;
    const out = value.map((v) => {
      const f = filterOne(v, ids, mayList);
      if (f === undefined) return v;
      changed = true;
      return f;
    });
    return changed ? out : undefined;
  }
  return filterOne(value, ids, mayList);
}

function filterOne(value: unknown, ids: ReadonlySet<JsonRpcId>, mayList: MayList): unknown {
  if (value === null || typeof value !== 'object') return undefined;
  const m = value as { id?: unknown; result?: unknown };
  if ((typeof m.id !== 'string' && typeof m.id !== 'number') || !ids.has(m.id)) return undefined;
  const result = m.result as { tools?: unknown } | undefined;
  if (result === null || typeof result !== 'object' || !Array.isArray(result.tools)) return undefined;
  // A tool without a string name cannot be called at all: never listed.
  const tools = result.tools.filter(
    (t: unknown) =>
      t !== null &&
      typeof t === 'object' &&
      typeof (t as { name?: unknown }).name === 'string' &&
      mayList((t as { name: string }).name),
  );
  // A result filtered for this user is this user's: a shared cache must not hand it to another
  // (2026-07-28 CacheableResult `cacheScope`; `ttlMs` kept). Checked whether or not a tool went:
  // the whole catalogue is what this user may see. Results without the field (2025) keep none.
  const shared = Object.hasOwn(result, 'cacheScope') && (result as { cacheScope?: unknown }).cacheScope !== 'private';
  if (tools.length === result.tools.length && !shared) return undefined;
  return { ...m, result: shared ? { ...result, tools, cacheScope: 'private' } : { ...result, tools } };
}
