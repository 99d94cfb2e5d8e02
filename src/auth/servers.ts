import type { ResolvedConfig } from '../config/load.js';
import { DEFAULT_SERVER } from '../config/schema.js';
import { TokenExchangeError } from '../errors.js';
import type { Route } from '../routing/route-table.js';
import type { ReadinessChecks } from './auth-setup.js';
import { createIdJagClient, ID_JAG_TOKEN_TYPE } from './id-jag.js';
import { createServerAuth, type ServerAuth, type ServerAuthDeps } from './server-auth.js';
import type { ExchangeRequest, TokenExchangeClient } from './token-exchange.js';

export type ExchangeStep = 'token_exchange' | 'id_jag' | 'jwt_bearer';

/** One request to one authorization server, for the per-server metrics (docs/operations.md "Metrics"). */
export type StepObserver = (labels: { server: string; step: ExchangeStep; outcome: string }, seconds: number) => void;

export interface ServerRegistryDeps extends ServerAuthDeps {
  readonly observeStep?: StepObserver | undefined;
}

/** What the token service calls for a route: one client, one issued-token check. */
export interface RouteServer {
  readonly client: TokenExchangeClient;
  readonly checkIssued: ServerAuth['checkIssued'];
}

/** The authorization servers of docs/cross-domain.md, by name; `default` is authorizationServer. */
export interface ServerRegistry {
  /** The server a route names (unset = default); undefined for a name the running config lacks. */
  get(name: string | undefined): ServerAuth | undefined;
  readonly all: readonly ServerAuth[];
  /**
   * The client of a route: its server's, or for `grant: id-jag` the two-step client. A reload may
   * name a server the running config lacks (authorizationServers needs a restart): that route
   * answers 503 rather than exchanging at the wrong server.
   */
  forRoute(route: Route): RouteServer;
  /** Runs each named server's first discovery and registers its readiness check `discovery:<name>`. */
  start(readiness: ReadinessChecks): Promise<void>;
  close(): void;
}

export function createServerRegistry(
  defaultServer: ServerAuth,
  config: ResolvedConfig,
  deps: ServerRegistryDeps,
): ServerRegistry {
  const byName = new Map<string, ServerAuth>([[DEFAULT_SERVER, defaultServer]]);
  const issuers = new Map<string, string | undefined>([[DEFAULT_SERVER, config.authorizationServer.issuer]]);
  for (const [name, as] of Object.entries(config.authorizationServers)) {
    byName.set(
      name,
      createServerAuth(
        { name, config: as, secrets: config.secrets.servers?.[name] ?? {}, path: `authorizationServers.${name}` },
        deps,
      ),
    );
    issuers.set(name, as.issuer);
  }
  const observed = new Map<string, TokenExchangeClient>();
  for (const [name, server] of byName) observed.set(name, observe(server.client, name, deps.observeStep));
  const named = [...byName.values()].filter((s) => s !== defaultServer);
  const idJag = new Map<string, RouteServer>();

  const lookup = (route: Route, name: string | undefined): ServerAuth => {
    const server = byName.get(name ?? DEFAULT_SERVER);
    if (server === undefined) {
      throw new TokenExchangeError(
        'temporarily_unavailable',
        'the authorization server of this route is not configured',
        'unavailable',
        {
          detail: `route ${route.name} names authorization server "${name}", added after start: restart required`,
        },
      );
    }
    return server;
  };

  return {
    get: (name) => byName.get(name ?? DEFAULT_SERVER),
    all: [...byName.values()],
    forRoute(route) {
      const idp = lookup(route, route.config.authorizationServer);
      if (route.config.grant !== 'id-jag')
        return { client: observed.get(idp.name) ?? idp.client, checkIssued: idp.checkIssued };
      const resource = lookup(route, route.config.resourceAuthorizationServer);
      const key = `${idp.name}\n${resource.name}`;
      let pair = idJag.get(key);
      if (pair === undefined) {
        const resourceIssuer = issuers.get(resource.name);
        if (resourceIssuer === undefined) throw new Error(`authorization server ${resource.name} has no issuer`); // refused by the schema
        pair = {
          client: createIdJagClient({
            idp: observed.get(idp.name) ?? idp.client,
            resource: observed.get(resource.name) ?? resource.client,
            resourceIssuer,
            idpName: idp.name,
            resourceName: resource.name,
            clock: deps.clock,
            logger: deps.logger,
          }),
          // The upstream gets the resource AS's token: its checks apply.
          checkIssued: resource.checkIssued,
        };
        idJag.set(key, pair);
      }
      return pair;
    },
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

function stepOf(req: ExchangeRequest): ExchangeStep {
  if (req.assertion !== undefined) return 'jwt_bearer';
  return req.requestedTokenType === ID_JAG_TOKEN_TYPE ? 'id_jag' : 'token_exchange';
}

/** Counts and times every request to one server, by step (queue wait included, as the route metrics). */
function observe(client: TokenExchangeClient, server: string, observer: StepObserver | undefined): TokenExchangeClient {
  if (observer === undefined) return client;
  return {
    async exchange(req, signal) {
      const started = performance.now();
      const step = stepOf(req);
      try {
        const issued = await client.exchange(req, signal);
        observer({ server, step, outcome: 'success' }, (performance.now() - started) / 1000);
        return issued;
      } catch (err) {
        observer(
          { server, step, outcome: err instanceof TokenExchangeError ? err.outcome : 'error' },
          (performance.now() - started) / 1000,
        );
        throw err;
      }
    },
  };
}
