import * as z from 'zod';
import { isLoopbackListen } from './address.js';
import { fleetSchema } from './fleet-schema.js';
import { revocationSchema } from './revocation-schema.js';
import { checkStepUpConfig, routeStepUpSchema, stepUpSchema } from './step-up-schema.js';

/** RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
/** RFC 9110 §5.1 field-name (a token); names are lower-cased before this check. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const ROUTE_NAME = /^[a-z0-9_-]{1,63}$/;

const scope = z.string().regex(SCOPE_TOKEN, 'must be an RFC 6749 scope token (no spaces or quotes)');
/** Extra request headers that could carry the user's credentials; never forwarded (docs/security.md). */
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

/** RFC 8693 §3: a token type is a URI (RFC 3986 §3.1 scheme, then anything). */
const tokenTypeUri = z.string().regex(/^[A-Za-z][A-Za-z0-9+.-]*:.+/, 'must be a token type URI (RFC 8693 §3)');

// URL.parse, not new URL: zod runs every refinement even after the URL check failed, and a throw
// there would escape as a TypeError instead of a problem with its path.
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
      .optional()
      .describe(
        'Requests whose path starts with this prefix on a segment boundary (`/documents` matches `/documents` and `/documents/a`, not `/documentsx`); the longest matching prefix wins.',
      ),
    host: z
      .string()
      .regex(/^[A-Za-z0-9.-]+$/, 'must be a host name without port')
      .optional()
      .describe(
        'Requests whose `Host` names this host (without port, case-insensitive); host routes win over path routes.',
      ),
  })
  .refine((m) => (m.pathPrefix === undefined) !== (m.host === undefined), 'set exactly one of pathPrefix or host');

/** Seconds a long-lived connection (stream, WebSocket) may stay open, up to a week; 0: no limit. */
const connectionSeconds = z.number().int().min(0).max(604_800).optional();

const mcp = z
  .strictObject({
    toolScopes: z
      .record(z.string().min(1), scopes)
      .default({})
      .describe(
        'Extra scopes per tool name (exact, case-sensitive): a `tools/call` of that tool is exchanged for `mcp:tools:write` (or its `methodScopes` override) plus these, under its own cache key.',
      ),
    methodScopes: z
      .record(z.string().min(1), scopes)
      .default({})
      .describe(
        "Overrides of the default method → scopes table, e.g. `{ tools/list: [catalog:read] }`. Every scope must also be in the route's `scopes`.",
      ),
    allowMethods: z
      .array(z.string().min(1))
      .default([])
      .describe('JSON-RPC methods outside the table that are let through; they need only the base scope.'),
    filterToolsList: z
      .boolean()
      .default(false)
      .describe('Hide from `tools/list` answers the tools whose `toolScopes` the user lacks.'),
    baseScopes: scopes
      .optional()
      .describe(
        "Candidates for the one scope asked for by messages that need none (initialize, ping, notifications, the GET stream, DELETE). Unset: the route's read scopes; `[]`: no scope parameter. Must be within the route's `scopes`.",
      ),
    maxBodyBytes: z
      .number()
      .int()
      .min(1024)
      .max(16 * 1024 * 1024)
      .default(1024 * 1024)
      .describe('Largest JSON-RPC POST body read; a larger one gets 413.'),
    maxStreamSeconds: connectionSeconds.describe(
      'Seconds a long-lived MCP stream (the GET SSE stream, a subscriptions/listen POST stream) stays open before the proxy ends it cleanly. Unset: until the delegated token that opened it expires. 0: no limit. A positive value replaces the token expiry as the limit (see [Stream lifetime](mcp.md#stream-lifetime)).',
    ),
    scopeImplies: z
      .record(scope, scopes)
      .default({})
      .describe(
        'Scope hierarchy used when judging what a user token grants: a scope -> the narrower scopes it implies (e.g. `mcp:tools:write: [mcp:tools:read]`); transitive.',
      ),
    resourceMetadata: httpUrl
      .optional()
      .describe(
        'RFC 9728 Protected Resource Metadata URL, sent as `resource_metadata` in the 401 and 403 challenges of this route.',
      ),
  })
  .describe(
    'MCP scope enforcement on this route: every JSON-RPC message is checked against the scopes it needs before any exchange, and exchanged for just those (see [MCP](mcp.md)).',
  );

/** `false` is short for `{ enabled: false }`. */
const websocket = z
  .union([
    z.boolean().transform((enabled) => ({ enabled })),
    z.strictObject({
      enabled: z.boolean().default(true).describe('`false`: an upgrade gets 403 `websocket_disabled`.'),
      maxConnectionSeconds: connectionSeconds.describe(
        'An open connection is closed after this long (close code 1008). Unset: when the delegated token expires; `0`: no limit.',
      ),
    }),
  ])
  .default({ enabled: true })
  .describe(
    'WebSocket upgrades on this route (see [WebSocket](websocket.md)): on by default; `false` is short for `{ enabled: false }`.',
  );

const route = z.strictObject({
  name: z
    .string()
    .regex(ROUTE_NAME, 'must match [a-z0-9_-]{1,63}')
    .describe('Unique route name; the `route` label of metrics and logs.'),
  match: match.describe('Which requests take this route: exactly one of `pathPrefix` or `host`.'),
  upstream: upstream.describe(
    'Where the route forwards: an absolute http(s) URL without query, fragment or credentials. Its origin gets one connection pool (see `upstreams`).',
  ),
  stripPrefix: z
    .boolean()
    .default(false)
    .describe(
      '`true`: the matched `pathPrefix` is removed before forwarding (`/documents/a` goes upstream as `/a`); `false`: the path goes upstream as received.',
    ),
  scopes: scopes
    .default([])
    .describe(
      'Scopes (RFC 6749 scope tokens) asked for in the exchange. Empty: no `scope` parameter, the authorization server grants its default (RFC 6749 §3.3); otherwise a token granted more than was asked for is refused.',
    ),
  audience: z.string().min(1).optional().describe('The `audience` parameter of the exchange (RFC 8693 §2.1).'),
  resource: resourceUri
    .optional()
    .describe('The `resource` parameter of the exchange (RFC 8707): an absolute URI without a fragment.'),
  requestedTokenType: tokenTypeUri
    .default('urn:ietf:params:oauth:token-type:access_token')
    .describe('The `requested_token_type` of the exchange (RFC 8693 §3).'),
  timeoutMs: z
    .number()
    .int()
    .min(1)
    .max(3_600_000)
    .default(30_000)
    .describe(
      "Time allowed for the upstream's response headers, counted from the forward step and including the wait for a pooled connection (then 504). A streamed request body's upload is not counted, and a streaming response (SSE, downloads) is never cut.",
    ),
  stripHeaders: stripHeaders
    .default([])
    .describe('Request headers never forwarded on this route, in addition to the top-level `stripHeaders`.'),
  stripCookies: stripCookies
    .default([])
    .describe('Cookie names never forwarded on this route, in addition to the top-level `stripCookies`.'),
  mcp: mcp.optional(),
  stepUp: routeStepUpSchema.optional(),
  websocket,
  authorizationServer: z
    .string()
    .min(1)
    .optional()
    .describe(
      'The authorization server this route exchanges at: `default` (the top-level `authorizationServer`) or a name from `authorizationServers`. Unset: `default`.',
    ),
  grant: z
    .enum(['token-exchange', 'id-jag'])
    .optional()
    .describe(
      '`token-exchange` (unset): one RFC 8693 exchange. `id-jag`: Cross App Access, an Identity Assertion JWT from `authorizationServer` redeemed with an RFC 7523 JWT bearer grant at `resourceAuthorizationServer` (see [Cross-domain routes](cross-domain.md)).',
    ),
  resourceAuthorizationServer: z
    .string()
    .min(1)
    .optional()
    .describe(
      'With `grant: id-jag` (and only then; required there): the authorization server, by name, that redeems the ID-JAG. It needs an `issuer` (the ID-JAG audience).',
    ),
  subjectToken: z
    .strictObject({ type: tokenTypeUri.describe('The `subject_token_type` sent for this route.') })
    .optional()
    .describe('Overrides `subjectToken.type` for this route (an IdP often wants the ID token type for an ID-JAG).'),
});

const authorizationServerFields = z.strictObject({
  issuer: httpUrl
    .optional()
    .describe(
      'Issuer URL. With it, the token endpoint (and the JWKS for `subjectToken.verify`) are discovered: RFC 8414 metadata, then OpenID Connect discovery.',
    ),
  tokenEndpoint: httpUrl
    .optional()
    .describe(
      'Token endpoint URL; required unless `issuer` is set, and used instead of the discovered one when both are.',
    ),
  clientId: z.string().min(1).describe("The proxy's `client_id` at this authorization server."),
  clientAuth: z
    .enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'])
    .default('client_secret_basic')
    .describe('How the proxy authenticates to the token endpoint (RFC 6749 §2.3; RFC 7523 for `private_key_jwt`).'),
  clientSecretFile: z
    .string()
    .min(1)
    .optional()
    .describe('File holding the client secret; required for `client_secret_basic` and `client_secret_post`.'),
  privateKeyFile: z
    .string()
    .min(1)
    .optional()
    .describe('File holding the `private_key_jwt` signing key (PEM or JWK); required for `private_key_jwt`.'),
  timeoutMs: z
    .number()
    .int()
    .min(1)
    .max(60_000)
    .default(3_000)
    .describe('Time limit of one HTTP request to the authorization server (token, discovery, JWKS), per attempt.'),
  allowIssuedExpAfterSubject: z
    .boolean()
    .default(false)
    .describe(
      "Accept a delegated JWT whose `exp` is after the user token's (else refused with 502). For an authorization server that issues fixed lifetimes: the cache still never uses it past the user token's `exp`, but a leaked copy would outlive the user's session.",
    ),
  retry: z
    .strictObject({
      maxAttempts: z.number().int().min(1).max(10).default(3).describe('Attempts per exchange, the first included.'),
      budgetMs: z
        .number()
        .int()
        .min(1)
        .max(120_000)
        .optional()
        .describe('Total time for one exchange, attempts and backoff included. Unset: 2 × `timeoutMs`.'),
      backoffMs: z
        .number()
        .int()
        .min(0)
        .max(10_000)
        .default(100)
        .describe('Base of the full-jitter exponential backoff between attempts.'),
    })
    .default({ maxAttempts: 3, backoffMs: 100 })
    .describe('Retries of one exchange: only after network errors, timeouts and 5xx answers, never after a 4xx.'),
  circuitBreaker: z
    .strictObject({
      failureThreshold: z
        .number()
        .int()
        .min(1)
        .max(1000)
        .default(5)
        .describe('Consecutive failed attempts (network error, timeout, 5xx) that open the circuit.'),
      openSeconds: z
        .number()
        .int()
        .min(1)
        .max(3600)
        .default(10)
        .describe('While open, exchanges answer 503 at once with `Retry-After`; then one probe is let through.'),
    })
    .default({ failureThreshold: 5, openSeconds: 10 })
    .describe('Stops calling a failing authorization server for a while.'),
  discoveryRefreshSeconds: z
    .number()
    .int()
    .min(10)
    .max(86_400)
    .default(3600)
    .describe('With `issuer`: how often the discovered metadata is fetched again.'),
  maxConcurrentExchanges: z
    .number()
    .int()
    .min(1)
    .max(1024)
    .default(32)
    .describe(
      "Exchanges sent at once (the server's connection pool holds this many plus 4). More wait in the proxy's own queue, which never counts as a failure of the authorization server.",
    ),
  maxQueuedExchanges: z
    .number()
    .int()
    .min(0)
    .max(100_000)
    .default(1000)
    .describe('Exchanges that may wait for a slot; more answer 503 `temporarily_unavailable` at once.'),
  exchangeQueueTimeoutMs: z
    .number()
    .int()
    .min(1)
    .max(120_000)
    .default(10_000)
    .describe('Longest wait for a slot, then 503; `timeoutMs` and the retry budget start once the exchange is sent.'),
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

/** The unnamed `authorizationServer` is the one routes use unless they name another (docs/cross-domain.md). */
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
  header: z
    .string()
    .toLowerCase()
    .regex(HEADER_NAME, 'must be an HTTP header name')
    .default('authorization')
    .describe("The request header that carries the user's token as `Bearer <token>`; removed before forwarding."),
  type: tokenTypeUri
    .default('urn:ietf:params:oauth:token-type:access_token')
    .describe('The `subject_token_type` of the exchange (RFC 8693 §2.1).'),
  verify: z
    .strictObject({
      jwksUri: httpUrl
        .optional()
        .describe(
          'Where the signing keys are. Unset: the `jwks_uri` discovered from `authorizationServer.issuer`, which must then be set.',
        ),
      issuer: z.string().min(1).describe('The `iss` the token must carry.'),
      audience: z
        .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
        .describe('The `aud` the token must carry: one value, or a list of which it must carry one.'),
      algorithms: z
        .array(z.string().min(1))
        .min(1)
        .default(['RS256', 'ES256', 'PS256', 'EdDSA'])
        .describe('Accepted JWS algorithms.'),
      clockToleranceSeconds: z
        .number()
        .int()
        .min(0)
        .max(300)
        .default(30)
        .describe('Clock skew allowed when checking `exp`, `nbf` and `iat`.'),
    })
    .optional()
    .describe(
      "Verify the user's token locally (a JWT: signature, issuer, audience, lifetime) before anything else; a token that fails gets 401.",
    ),
});

const actorToken = z.strictObject({
  file: z.string().min(1).describe("File holding the agent's own token; read again when it changes."),
  type: tokenTypeUri
    .default('urn:ietf:params:oauth:token-type:jwt')
    .describe('The `actor_token_type` of the exchange.'),
});

const cache = z
  .strictObject({
    refreshAheadSeconds: z
      .number()
      .int()
      .min(0)
      .max(3600)
      .default(30)
      .describe(
        'A token is refreshed in the background `min(refreshAheadSeconds, lifetime / 2)` before it expires. Must be less than `maxTtlSeconds`.',
      ),
    maxTtlSeconds: z
      .number()
      .int()
      .min(1)
      .max(86_400)
      .default(300)
      .describe(
        "Longest time a delegated token is used, whatever its `expires_in` (never past the user token's `exp`).",
      ),
    maxEntries: z
      .number()
      .int()
      .min(1)
      .max(10_000_000)
      .default(10_000)
      .describe('Cached tokens at most; the least recently used is evicted first.'),
    clockSkewSeconds: z
      .number()
      .int()
      .min(0)
      .max(60)
      .default(5)
      .describe('Seconds subtracted from every expiry: a token is never used in its last seconds.'),
    invalidGrantMemorySeconds: z
      .number()
      .int()
      .min(0)
      .max(300)
      .default(5)
      .describe(
        'How long an `invalid_grant` answer is remembered per user token: the same token gets 401 without another exchange. `0`: off.',
      ),
  })
  .refine((c) => c.refreshAheadSeconds < c.maxTtlSeconds, {
    path: ['refreshAheadSeconds'],
    message: 'must be less than maxTtlSeconds',
  });

const logging = z.strictObject({
  level: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info')
    .describe('Log level; the environment variable `DELEGATE_PROXY_LOG_LEVEL` overrides it.'),
  pretty: z
    .boolean()
    .default(false)
    .describe(
      'Human-readable lines instead of JSON (needs `pino-pretty`; for local use); `DELEGATE_PROXY_LOG_PRETTY` overrides it.',
    ),
});

const shutdown = z
  .strictObject({
    drainDelaySeconds: z
      .number()
      .min(0)
      .max(300)
      .default(5)
      .describe('After SIGTERM, `/readyz` answers 503 at once while the listener keeps accepting this long.'),
    gracePeriodSeconds: z
      .number()
      .min(0)
      .max(3600)
      .default(25)
      .describe(
        'After the drain delay: how long in-flight requests, SSE streams and WebSockets may take before they are cut.',
      ),
  })
  .default({ drainDelaySeconds: 5, gracePeriodSeconds: 25 })
  .describe(
    "Graceful shutdown on SIGTERM and SIGINT (see [Operations](operations.md)). Keep the pod's `terminationGracePeriodSeconds` above the sum.",
  );

const upstreams = z
  .strictObject({
    connections: z
      .number()
      .int()
      .min(1)
      .max(65_536)
      .default(256)
      .describe("Connections per upstream origin; more concurrent requests wait, within the route's `timeoutMs`."),
    keepAliveTimeoutMs: z
      .number()
      .int()
      .min(1)
      .max(600_000)
      .default(4_000)
      .describe(
        "How long an idle kept-alive upstream connection stays open. Keep it below the upstream's own idle timeout (Node's default is 5 s).",
      ),
  })
  .default({ connections: 256, keepAliveTimeoutMs: 4_000 })
  .describe('The connection pools, one per upstream origin.');

const clientTimeouts = z
  .strictObject({
    headersMs: z
      .number()
      .int()
      .min(100)
      .max(300_000)
      .default(60_000)
      .describe('The request line and headers must arrive within this; else 408 and the connection is closed.'),
    requestMs: z
      .number()
      .int()
      .min(0)
      .max(86_400_000)
      .default(300_000)
      .describe('The whole request, body included; `0`: no limit. Must be 0 or at least `headersMs`.'),
  })
  .refine((t) => t.requestMs === 0 || t.requestMs >= t.headersMs, {
    message: 'requestMs must be 0 or at least headersMs',
    path: ['requestMs'],
  })
  .default({ headersMs: 60_000, requestMs: 300_000 })
  .describe("Time limits for agents' requests on the agent listener.");

export const configSchema = z
  .strictObject({
    listen: listenAddress
      .default('127.0.0.1:8080')
      .describe('The agent listener, `host:port`. Keep it on loopback in a pod: only the agent next to it needs it.'),
    admin: listenAddress
      .default('127.0.0.1:9090')
      .describe(
        'The admin listener, `host:port`: `/metrics`, `/healthz`, `/readyz`, and the step-up and revocation endpoints. Use `0.0.0.0:9090` in a pod for Prometheus and the kubelet.',
      ),
    allowedHosts: z
      .array(allowedHost)
      .optional()
      .describe(
        'Host names agents use to reach the agent listener, besides localhost, 127.0.0.1, [::1], IP addresses ' +
          'and the hosts of host routes (which are always allowed). A request whose Host or Origin names any ' +
          'other host gets 403 `host_not_allowed` before anything else (DNS-rebinding protection). Entries: ' +
          'exact names, `*.example.com` for subdomains, or `*` to turn the check off. Required when `listen` ' +
          'is not a loopback address.',
      ),
    authorizationServer: authorizationServer.describe(
      'The authorization server every route exchanges at unless it names another (RFC 8693 token exchange).',
    ),
    authorizationServers: authorizationServers
      .default({})
      .describe(
        'More authorization servers by name (`[a-z0-9_-]{1,63}`, at most 32, not `default`), each with the keys of `authorizationServer`; routes pick one (see [Cross-domain routes](cross-domain.md)).',
      ),
    subjectToken: subjectToken
      .default({
        header: 'authorization',
        type: 'urn:ietf:params:oauth:token-type:access_token',
      })
      .describe("Where the user's token is, its type, and its optional local verification."),
    actorToken: actorToken
      .optional()
      .describe(
        "The agent's own identity, sent as `actor_token` with every exchange (RFC 8693 §2.1), e.g. a projected service-account token.",
      ),
    cache: cache
      .default({
        refreshAheadSeconds: 30,
        maxTtlSeconds: 300,
        maxEntries: 10_000,
        clockSkewSeconds: 5,
        invalidGrantMemorySeconds: 5,
      })
      .describe('The delegated-token cache (see [Token cache](token-cache.md)).'),
    logging: logging.default({ level: 'info', pretty: false }).describe('Logs: JSON lines on stdout.'),
    shutdown,
    upstreams,
    clientTimeouts,
    stepUp: stepUpSchema.optional(),
    revocation: revocationSchema.optional(),
    fleet: fleetSchema.optional(),
    stripHeaders: stripHeaders
      .default([])
      .describe(
        "Request headers, besides the token header, that could carry the user's credentials (e.g. `x-user-token`); never forwarded on any route.",
      ),
    stripCookies: stripCookies.default([]).describe('Cookie names never forwarded on any route.'),
    routes: z
      .array(route)
      .min(1, 'at least one route is required')
      .describe('The routes: at least one; names and matches are unique.'),
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
    if (cfg.fleet !== undefined && cfg.revocation === undefined && cfg.stepUp === undefined) {
      ctx.addIssue({ code: 'custom', path: ['fleet'], message: 'shares nothing without revocation or stepUp' });
    }
  });

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type RouteConfig = Config['routes'][number];
export type AuthorizationServerConfig = Config['authorizationServer'];
export type McpConfig = NonNullable<RouteConfig['mcp']>;
