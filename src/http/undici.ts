import { createRequire } from 'node:module';
import type * as Undici from 'undici';

// undici's package entry loads every dispatcher kind, fetch, WebSocket, EventSource, the cache
// stores, the mocks and SQLite: +21 MB of idle RSS measured on Node 24, against +11 MB for the core
// dispatchers the proxy uses. These are the same files the entry loads (the package has no `exports`
// map), so a Dispatcher made from `undici` elsewhere (tests) is of the same classes.
const load = createRequire(import.meta.url);
const DispatcherBase = load('undici/lib/dispatcher/dispatcher') as typeof Undici.Dispatcher;
// What the package entry does at load: request(), stream(), upgrade()... become Dispatcher methods.
Object.assign(DispatcherBase.prototype, load('undici/lib/api'));

export const Agent = load('undici/lib/dispatcher/agent') as typeof Undici.Agent;
export const Pool = load('undici/lib/dispatcher/pool') as typeof Undici.Pool;

type RequestOptions = Omit<Undici.Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & {
  readonly method: Undici.Dispatcher.HttpMethod;
  /** Required: the proxy never uses undici's global dispatcher. */
  readonly dispatcher: Undici.Dispatcher;
};

/** undici's `request(url, options)`, on the given dispatcher only. */
export function request(url: string | URL, options: RequestOptions): Promise<Undici.Dispatcher.ResponseData> {
  const { dispatcher, ...rest } = options;
  const target = typeof url === 'string' ? new URL(url) : url;
  return dispatcher.request({ ...rest, origin: target.origin, path: `${target.pathname}${target.search}` });
}
export type Agent = Undici.Agent;
export type Pool = Undici.Pool;
