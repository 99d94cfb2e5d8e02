import type * as Undici from 'undici';
import api from 'undici/lib/api/index.js';
import AgentClass from 'undici/lib/dispatcher/agent.js';
import DispatcherBase from 'undici/lib/dispatcher/dispatcher.js';
import PoolClass from 'undici/lib/dispatcher/pool.js';

// undici's package entry loads every dispatcher kind, fetch, WebSocket, EventSource, the cache
// stores, the mocks and SQLite: +21 MB of idle RSS measured on Node 24, against +11 MB for the core
// dispatchers the proxy uses. These are the same files the entry loads (the package has no `exports`
// map), so a Dispatcher made from `undici` elsewhere (tests) is of the same classes. The paths are
// internal: package.json pins undici's minor version.

// What the package entry does at load: request(), stream(), upgrade()... become Dispatcher methods.
Object.assign(DispatcherBase.prototype, api);

export const Agent = AgentClass;
export const Pool = PoolClass;
export type Agent = Undici.Agent;
export type Pool = Undici.Pool;

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
