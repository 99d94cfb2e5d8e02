import type { McpConfig, RouteConfig } from '../config/schema.js';

/** A route compiled for matching and exchange; immutable. */
export interface Route {
  readonly name: string;
  readonly upstream: URL;
  readonly pathPrefix: string | undefined;
  readonly host: string | undefined;
  readonly stripPrefix: boolean;
  /** Sorted, de-duplicated. */
  readonly scopes: readonly string[];
  readonly audience: string | undefined;
  readonly resource: string | undefined;
  readonly requestedTokenType: string;
  readonly timeoutMs: number;
  readonly mcp: McpConfig | undefined;
  readonly config: RouteConfig;
}

export interface RouteMatch {
  readonly route: Route;
  /** Path and query to request at the upstream (prefix removed when stripPrefix). */
  readonly forwardPath: string;
}

export function normalizeScopes(scopes: Iterable<string>): string[] {
  return [...new Set(scopes)].sort();
}

export function compileRoute(config: RouteConfig): Route {
  return Object.freeze({
    name: config.name,
    upstream: new URL(config.upstream),
    pathPrefix: config.match.pathPrefix?.replace(/\/+$/, '') ?? undefined,
    host: config.match.host?.toLowerCase(),
    stripPrefix: config.stripPrefix,
    scopes: Object.freeze(normalizeScopes(config.scopes)),
    audience: config.audience,
    resource: config.resource,
    requestedTokenType: config.requestedTokenType,
    timeoutMs: config.timeoutMs,
    mcp: config.mcp,
    config,
  });
}

/**
 * Request -> route. Host routes win over path routes; among path routes the longest prefix that
 * ends on a segment boundary wins. Only the route's configured upstream is ever used: nothing in
 * the request chooses where it goes.
 */
export class RouteTable {
  readonly routes: readonly Route[];
  readonly #byHost = new Map<string, Route>();
  readonly #byPrefix: Route[];

  constructor(configs: readonly RouteConfig[]) {
    this.routes = Object.freeze(configs.map(compileRoute));
    for (const r of this.routes) if (r.host !== undefined) this.#byHost.set(r.host, r);
    this.#byPrefix = this.routes
      .filter((r) => r.pathPrefix !== undefined)
      .sort((a, b) => (b.pathPrefix?.length ?? 0) - (a.pathPrefix?.length ?? 0));
  }

  /** `path` is an origin-form target (already checked by request-target). */
  match(hostHeader: string | undefined, path: string): RouteMatch | undefined {
    if (this.#byHost.size > 0 && hostHeader !== undefined) {
      const route = this.#byHost.get(stripPort(hostHeader).toLowerCase());
      if (route) return { route, forwardPath: path };
    }
    const q = path.indexOf('?');
    const pathname = q === -1 ? path : path.slice(0, q);
    for (const route of this.#byPrefix) {
      const prefix = route.pathPrefix as string;
      if (prefix === '' || pathname === prefix || pathname.startsWith(`${prefix}/`)) {
        if (!route.stripPrefix) return { route, forwardPath: path };
        const rest = path.slice(prefix.length);
        return { route, forwardPath: rest.startsWith('/') ? rest : `/${rest}` };
      }
    }
    return undefined;
  }
}

function stripPort(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  const i = host.indexOf(':');
  return i === -1 ? host : host.slice(0, i);
}
