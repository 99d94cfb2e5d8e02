import type { ResolvedConfig } from '../config/load.js';
import { DEFAULT_SERVER } from '../config/schema.js';
import { TokenExchangeError } from '../errors.js';
import type { Route } from '../routing/route-table.js';
import type { Readiness } from '../server/readiness.js';
import { createServerAuth, type ServerAuth, type ServerAuthDeps } from './server-auth.js';

/** The authorization servers of README "Cross-domain routes", by name; `default` is authorizationServer. */
export interface ServerRegistry {
  /** The server a route names (unset = default); undefined for a name the running config lacks. */
  get(name: string | undefined): ServerAuth | undefined;
  readonly all: readonly ServerAuth[];
  /**
   * The server of a route. A reload may name a server the running config lacks (authorizationServers
   * needs a restart): that route answers 503 rather than exchanging at the wrong server.
   */
  forRoute(route: Route): ServerAuth;
  /** Runs each named server's first discovery and registers its readiness check `discovery:<name>`. */
  start(readiness: Readiness): Promise<void>;
  close(): void;
}

export function createServerRegistry(defaultServer: ServerAuth, config: ResolvedConfig, deps: ServerAuthDeps): ServerRegistry {
  const byName = new Map<string, ServerAuth>([[DEFAULT_SERVER, defaultServer]]);
  for (const [name, as] of Object.entries(config.authorizationServers)) {
    byName.set(
      name,
      createServerAuth({ name, config: as, secrets: config.secrets.servers?.[name] ?? {}, path: `authorizationServers.${name}` }, deps),
    );
  }
  const named = [...byName.values()].filter((s) => s !== defaultServer);
  return {
    get: (name) => byName.get(name ?? DEFAULT_SERVER),
    forRoute(route) {
      const server = byName.get(route.config.authorizationServer ?? DEFAULT_SERVER);
      if (server === undefined) {
        throw new TokenExchangeError('temporarily_unavailable', 'the authorization server of this route is not configured', 'unavailable', {
          detail: `route ${route.name} names authorization server "${route.config.authorizationServer}", added after start: restart required`,
        });
      }
      return server;
    },
    all: [...byName.values()],
    async start(readiness) {
      await Promise.all(
        named.map(async (server) => {
          const discovery = server.discovery;
          if (discovery === undefined) return;
          // Not ready until every server a route may use is known: a pod would answer 503 on those routes.
          readiness.addCheck(`discovery:${server.name}`, () => discovery.readinessReason());
          await discovery.start();
        }),
      );
    },
    close() {
      for (const server of named) server.discovery?.close();
    },
  };
}
