import { z } from 'zod';
import { isLoopbackListen } from './address.js';
import { revocationSchema } from './revocation-schema.js';
import { checkStepUpConfig, routeStepUpSchema, stepUpSchema } from './step-up-schema.js';

/** RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const ROUTE_NAME = /^[a-z0-9_-]{1,63}$/;

const scope = z.string().regex(SCOPE_TOKEN, 'must be an RFC 6749 scope token (no spaces or quotes)');
/** Extra request headers that could carry the user's credentials; never forwarded (README "Security model"). */
const stripHeaders = z.array(z.string().toLowerCase().regex(HEADER_NAME, 'must be an HTTP header name'));
/** RFC 6265 §4.1.1 cookie-name (a token); cookies with these names are never forwarded. */
const stripCookies = z.array(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be a cookie name'));
const scopes = z.array(scope);

/** host:port, e.g. 127.0.0.1:8080, [::1]:8080 or 0.0.0.0:9090. */
const listenAddress = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be host:port');

/**
 * A host name agents use to reach the listener (docs/security.md "DNS rebinding"): an exact name,
 * `*.example.com` for its subdomains, or `*` alone to turn the check off.
 */
const allowedHost = z
  .string()
  .toLowerCase()
  .regex(
    /^(\*|(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*)$/,
    'must be a host name without port, *.domain for its subdomains, or * for any host',
  );

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an absolute http(s) URL' });

/** RFC 8707 §2: a resource is an absolute URI without a fragment. */
const resourceUri = z
  .string()
  .refine((v) => URL.canParse(v) && !v.includes('#'), 'must be an absolute URI without a fragment (RFC 8707 §2)');

const tokenTypeUri = z
  .string()
  .regex(
    /^urn:ietf:params:oauth:token-type:[a-z0-9_-]+$|^[a-z][a-z0-9+.-]*:.+/i,
    'must be a token type URI (RFC 8693 §3)',
  );

// URL.parse, not new URL: zod runs every refinement even after the URL check failed, and a throw
// there would escape as a TypeError instead of a problem with its path (issue 13.1).
const upstream = httpUrl.refine((v) => {
  const u = URL.parse(v);
  return u === null || (u.search === '' && u.hash === '' && u.username === '' && u.password === '');
}, 'must not carry a query, fragment or credentials');

const match = z
  .strictObject({
    pathPrefix: z
      .string()
      .regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/, 'must start with / and hold only path characters')
      .refine((p) => !p.split('/').some((s) => s === '..' || s === '.'), 'must not contain . or .. segments')
      .optional(),
    host: z
      .string()
      .regex(/^[a-z0-9.-]+$/i, 'must be a host name without port')
      .optional(),
  })
  .refine((m) => (m.pathPrefix === undefined) !== (m.host === undefined), 'set exactly one of pathPrefix or host');

const mcp = z.strictObject({
  toolScopes: z.record(z.string().min(1), scopes).default({}),
  /** Overrides of the default method -> scopes table (README "MCP"). */
  methodScopes: z.record(z.string().min(1), scopes).default({}),
  /** Methods outside the table that are let through with no extra scope. */
  allowMethods: z.array(z.string().min(1)).default([]),
  filterToolsList: z.boolean().default(false),
  /** Scopes to pick one from for messages that need none (initialize, ping, GET stream, DELETE). */
  baseScopes: scopes.optional(),
  maxBodyBytes: z
    .number()
    .int()
    .min(1024)
    .max(16 * 1024 * 1024)
    .default(1024 * 1024),
});

/**
 * WebSocket upgrades on a route (README "WebSocket"): on by default; `false` is short for
 * `{ enabled: false }`. maxConnectionSeconds: unset = the delegated token's remaining lifetime,
 * 0 = no limit.
 */
const websocket = z
  .union([
    z.boolean().transform((enabled) => ({ enabled })),
    z.strictObject({
      enabled: z.boolean().default(true),
      maxConnectionSeconds: z.number().int().min(0).max(604_800).optional(),
    }),
  ])
  .default({ enabled: true });

const route = z.strictObject({
  name: z.string().regex(ROUTE_NAME, 'must match [a-z0-9_-]{1,63}'),
  match,
  upstream,
  stripPrefix: z.boolean().default(false),
  scopes: scopes.default([]),
  audience: z.string().min(1).optional(),
  resource: resourceUri.optional(),
  requestedTokenType: tokenTypeUri.default('urn:ietf:params:oauth:token-type:access_token'),
  timeoutMs: z.number().int().min(1).max(3_600_000).default(30_000),
  stripHeaders: stripHeaders.default([]),
  stripCookies: stripCookies.default([]),
  mcp: mcp.optional(),
  stepUp: routeStepUpSchema.optional(),
  websocket,
  /** A name from authorizationServers; unset = the default authorizationServer. */
  authorizationServer: z.string().min(1).optional(),
  /**
   * `id-jag`: exchange at authorizationServer (the IdP) for an Identity Assertion JWT, then redeem it
   * with an RFC 7523 JWT bearer grant at resourceAuthorizationServer (README "Cross-domain routes").
   * Unset = token-exchange.
   */
  grant: z.enum(['token-exchange', 'id-jag']).optional(),
  resourceAuthorizationServer: z.string().min(1).optional(),
  /** Overrides subjectToken.type for this route (an IdP often wants the ID token type for an ID-JAG). */
  subjectToken: z.strictObject({ type: tokenTypeUri }).optional(),
});

const authorizationServerFields = z.strictObject({
  issuer: httpUrl.optional(),
  tokenEndpoint: httpUrl.optional(),
  clientId: z.string().min(1),
  clientAuth: z
    .enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'])
    .default('client_secret_basic'),
  clientSecretFile: z.string().min(1).optional(),
  privateKeyFile: z.string().min(1).optional(),
  /** Per attempt: one HTTP request to the token endpoint (also discovery and JWKS fetches). */
  timeoutMs: z.number().int().min(1).max(60_000).default(3_000),
  /**
   * Accept a delegated JWT whose exp is after the user token's. Off by default (such a token is
   * refused with 502); turn on for an AS that issues fixed lifetimes: the cache still never uses
   * it past the user token's exp, but a leaked copy would outlive the user's session.
   */
  allowIssuedExpAfterSubject: z.boolean().default(false),
  /** Retries of one exchange: only network errors, timeouts and 5xx; never 4xx (README "Security model"). */
  retry: z
    .strictObject({
      maxAttempts: z.number().int().min(1).max(10).default(3),
      /** Total time for one exchange, attempts and backoff included. Default: 2 × timeoutMs. */
      budgetMs: z.number().int().min(1).max(120_000).optional(),
      /** Base of the full-jitter exponential backoff between attempts. */
      backoffMs: z.number().int().min(0).max(10_000).default(100),
    })
    .default({ maxAttempts: 3, backoffMs: 100 }),
  circuitBreaker: z
    .strictObject({
      /** Consecutive failed attempts (network error, timeout, 5xx) that open the circuit. */
      failureThreshold: z.number().int().min(1).max(1000).default(5),
      /** While open, exchanges answer 503 at once with Retry-After; then one probe is let through. */
      openSeconds: z.number().int().min(1).max(3600).default(10),
    })
    .default({ failureThreshold: 5, openSeconds: 10 }),
  /** With `issuer`: how often the metadata (RFC 8414 / OIDC discovery) is fetched again. */
  discoveryRefreshSeconds: z.number().int().min(10).max(86_400).default(3600),
  /**
   * Token exchanges sent to the AS at once (also its connection pool size). More wait in the
   * proxy's own queue, which never counts as an AS failure (README "Reliability").
   */
  maxConcurrentExchanges: z.number().int().min(1).max(1024).default(32),
  /** Exchanges that may wait for a slot; more answer 503 temporarily_unavailable at once. */
  maxQueuedExchanges: z.number().int().min(0).max(100_000).default(1000),
  /** Longest wait for a slot before 503; the AS timeouts count only once the exchange is sent. */
  exchangeQueueTimeoutMs: z.number().int().min(1).max(120_000).default(10_000),
});

const authorizationServer = authorizationServerFields.superRefine((as, ctx) => {
  if (as.issuer === undefined && as.tokenEndpoint === undefined) {
    ctx.addIssue({ code: 'custom', path: ['tokenEndpoint'], message: 'required unless issuer is set' });
  }
  if ((as.clientAuth === 'client_secret_basic' || as.clientAuth === 'client_secret_post') && !as.clientSecretFile) {
    ctx.addIssue({ code: 'custom', path: ['clientSecretFile'], message: `required for clientAuth ${as.clientAuth}` });
  }
  if (as.clientAuth === 'private_key_jwt' && !as.privateKeyFile) {
    ctx.addIssue({ code: 'custom', path: ['privateKeyFile'], message: 'required for clientAuth private_key_jwt' });
  }
});

/** The unnamed `authorizationServer` is the one routes use unless they name another (README "Cross-domain routes"). */
export const DEFAULT_SERVER = 'default';
/** Bounded: the names become a metric label and each server holds its own connections. */
const MAX_SERVERS = 32;
const authorizationServers = z
  .record(z.string().regex(ROUTE_NAME, 'must match [a-z0-9_-]{1,63}'), authorizationServer)
  .refine((m) => Object.keys(m).length <= MAX_SERVERS, `at most ${MAX_SERVERS} authorization servers`)
  .refine(
    (m) => !Object.hasOwn(m, DEFAULT_SERVER),
    `"${DEFAULT_SERVER}" is the name of authorizationServer; choose another`,
  );

const subjectToken = z.strictObject({
  header: z.string().toLowerCase().regex(HEADER_NAME, 'must be an HTTP header name').default('authorization'),
  type: tokenTypeUri.default('urn:ietf:params:oauth:token-type:access_token'),
  verify: z
    .strictObject({
      jwksUri: httpUrl.optional(),
      issuer: z.string().min(1),
      audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
      algorithms: z.array(z.string().min(1)).min(1).default(['RS256', 'ES256', 'PS256', 'EdDSA']),
      clockToleranceSeconds: z.number().int().min(0).max(300).default(30),
    })
    .optional(),
});

const actorToken = z.strictObject({
  file: z.string().min(1),
  type: tokenTypeUri.default('urn:ietf:params:oauth:token-type:jwt'),
});

const cache = z
  .strictObject({
    refreshAheadSeconds: z.number().int().min(0).max(3600).default(30),
    maxTtlSeconds: z.number().int().min(1).max(86_400).default(300),
    maxEntries: z.number().int().min(1).max(10_000_000).default(10_000),
    /** Seconds subtracted from every expiry so a token is never used as it expires (clock skew). */
    clockSkewSeconds: z.number().int().min(0).max(60).default(5),
    /** How long an `invalid_grant` answer is remembered per subject token (docs/design.md "Cache"). */
    invalidGrantMemorySeconds: z.number().int().min(0).max(300).default(5),
  })
  .refine((c) => c.refreshAheadSeconds < c.maxTtlSeconds, {
    path: ['refreshAheadSeconds'],
    message: 'must be less than maxTtlSeconds',
  });

const logging = z.strictObject({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  pretty: z.boolean().default(false),
});

/** Graceful shutdown on SIGTERM/SIGINT (README "Operations"). */
const shutdown = z
  .strictObject({
    /** Readiness answers 503 but the listener still accepts, so endpoints can drop the pod first. */
    drainDelaySeconds: z.number().min(0).max(300).default(5),
    /** After the drain delay: how long in-flight requests and SSE streams may take before they are cut. */
    gracePeriodSeconds: z.number().min(0).max(3600).default(25),
  })
  .default({ drainDelaySeconds: 5, gracePeriodSeconds: 25 });

/** Upstream connection pools, one per upstream origin (README "Configuration"); a change needs a restart. */
const upstreams = z
  .strictObject({
    /** Connections per upstream origin; more concurrent requests wait (within the route's timeoutMs). */
    connections: z.number().int().min(1).max(65_536).default(256),
    /** How long an idle kept-alive upstream connection stays open. */
    keepAliveTimeoutMs: z.number().int().min(1).max(600_000).default(4_000),
  })
  .default({ connections: 256, keepAliveTimeoutMs: 4_000 });

/** Time limits for agents' requests on the agent listener (README "Reliability"). */
const clientTimeouts = z
  .strictObject({
    /** Request line and headers must arrive within this; else 408 and the connection is closed. */
    headersMs: z.number().int().min(100).max(300_000).default(60_000),
    /** The whole request, body included (0 = no limit; long uploads need a large value). */
    requestMs: z.number().int().min(0).max(86_400_000).default(300_000),
  })
  .refine((t) => t.requestMs === 0 || t.requestMs >= t.headersMs, {
    message: 'requestMs must be 0 or at least headersMs',
    path: ['requestMs'],
  })
  .default({ headersMs: 60_000, requestMs: 300_000 });

export const configSchema = z
  .strictObject({
    listen: listenAddress.default('127.0.0.1:8080'),
    admin: listenAddress.default('127.0.0.1:9090'),
    allowedHosts: z
      .array(allowedHost)
      .optional()
      .describe(
        'Host names agents use to reach the agent listener, besides localhost, 127.0.0.1, [::1], IP addresses ' +
          'and the hosts of host routes (which are always allowed). A request whose Host or Origin names any ' +
          'other host gets 403 host_not_allowed before anything else (DNS-rebinding protection). Entries: ' +
          'exact names, `*.example.com` for subdomains, or `*` to turn the check off. Required when `listen` ' +
          'is not a loopback address.',
      ),
    authorizationServer,
    authorizationServers: authorizationServers.default({}),
    subjectToken: subjectToken.default({
      header: 'authorization',
      type: 'urn:ietf:params:oauth:token-type:access_token',
    }),
    actorToken: actorToken.optional(),
    cache: cache.default({
      refreshAheadSeconds: 30,
      maxTtlSeconds: 300,
      maxEntries: 10_000,
      clockSkewSeconds: 5,
      invalidGrantMemorySeconds: 5,
    }),
    logging: logging.default({ level: 'info', pretty: false }),
    shutdown,
    upstreams,
    clientTimeouts,
    stepUp: stepUpSchema.optional(),
    revocation: revocationSchema.optional(),
    stripHeaders: stripHeaders.default([]),
    stripCookies: stripCookies.default([]),
    routes: z.array(route).min(1, 'at least one route is required'),
  })
  .superRefine((cfg, ctx) => {
    if (cfg.allowedHosts === undefined && !isLoopbackListen(cfg.listen)) {
      ctx.addIssue({
        code: 'custom',
        path: ['allowedHosts'],
        message:
          'required when listen is not a loopback address: list the host names agents use to reach the proxy ' +
          '(IP addresses and localhost always work; [] for none), or ["*"] to accept any Host',
      });
    }
    if (
      cfg.subjectToken.verify &&
      cfg.subjectToken.verify.jwksUri === undefined &&
      cfg.authorizationServer.issuer === undefined
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['subjectToken', 'verify', 'jwksUri'],
        message: 'required unless authorizationServer.issuer is set (discovery)',
      });
    }
    const seen = new Map<string, number>();
    cfg.routes.forEach((r, i) => {
      const prev = seen.get(r.name);
      if (prev !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i, 'name'],
          message: `duplicate route name (also routes[${prev}])`,
        });
      }
      seen.set(r.name, i);
    });
    const matches = new Map<string, number>();
    cfg.routes.forEach((r, i) => {
      const k = r.match.host !== undefined ? `host:${r.match.host.toLowerCase()}` : `path:${r.match.pathPrefix}`;
      const prev = matches.get(k);
      if (prev !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['routes', i, 'match'], message: `same match as routes[${prev}]` });
      }
      matches.set(k, i);
    });
    cfg.routes.forEach((r, i) => {
      // Session-level MCP requests are exchanged for baseScopes: never more than the route may ask for.
      const outside = (r.mcp?.baseScopes ?? []).filter((sc) => !r.scopes.includes(sc));
      if (outside.length > 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i, 'mcp', 'baseScopes'],
          message: `not in the route's scopes: ${outside.join(' ')}`,
        });
      }
    });
    cfg.routes.forEach((r, i) => {
      const name = r.authorizationServer;
      if (name !== undefined && name !== DEFAULT_SERVER && !Object.hasOwn(cfg.authorizationServers, name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i, 'authorizationServer'],
          message: `unknown authorization server "${name}" (not in authorizationServers)`,
        });
      }
    });
    cfg.routes.forEach((r, i) => {
      const name = r.resourceAuthorizationServer;
      if (r.grant !== 'id-jag') {
        if (name !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: ['routes', i, 'resourceAuthorizationServer'],
            message: 'only with grant: id-jag',
          });
        return;
      }
      if (name === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i, 'resourceAuthorizationServer'],
          message: 'required for grant: id-jag',
        });
        return;
      }
      const server =
        name === DEFAULT_SERVER
          ? cfg.authorizationServer
          : Object.hasOwn(cfg.authorizationServers, name)
            ? cfg.authorizationServers[name]
            : undefined;
      if (server === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i, 'resourceAuthorizationServer'],
          message: `unknown authorization server "${name}" (not in authorizationServers)`,
        });
      } else if (server.issuer === undefined) {
        // The ID-JAG's audience is the resource authorization server's issuer identifier.
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i, 'resourceAuthorizationServer'],
          message: `authorization server "${name}" needs an issuer (the ID-JAG audience)`,
        });
      }
    });
    checkStepUpConfig(cfg, (issue) => ctx.addIssue(issue));
  });

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type RouteConfig = Config['routes'][number];
export type AuthorizationServerConfig = Config['authorizationServer'];
export type McpConfig = NonNullable<RouteConfig['mcp']>;
