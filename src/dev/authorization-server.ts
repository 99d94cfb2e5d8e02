import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  type CryptoKey,
  calculateJwkThumbprint,
  createRemoteJWKSet,
  exportJWK,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  jwtVerify,
  SignJWT,
} from 'jose';
import type {
  AccessToken,
  Adapter,
  ClientMetadata,
  Configuration,
  KoaContextWithOIDC,
  TokenEndpointGrantContext,
} from 'oidc-provider';
import { errors, Provider } from 'oidc-provider';
import { closeServer, listen, urlOf } from '../server/listen.js';

/** A client registered at the dev authorization server. */
export interface DevClient {
  clientId: string;
  clientSecret?: string;
  tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';
  /** Public keys for `private_key_jwt`. */
  jwks?: { keys: object[] };
}

/** Options of {@link startAuthorizationServer}. */
export interface AuthorizationServerOptions {
  /** Default `127.0.0.1`. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  clients: DevClient[];
  /** Lifetime of the tokens issued by token exchange. Default 300. */
  accessTokenTtlSeconds?: number;
  /** The `iss` of every token. Default: the server's own URL. Endpoints are always served at `url`. */
  issuer?: string;
  /**
   * Runs before the provider sees a request; call `next()` to let it through (tests use this to
   * delay or break answers). Default: every request goes straight to the provider.
   */
  intercept?: (req: IncomingMessage, res: ServerResponse, next: () => void) => void;
  /**
   * IdP mode of Cross App Access (docs/cross-domain.md): token exchange with
   * `requested_token_type=urn:ietf:params:oauth:token-type:id-jag` issues an ID-JAG
   * (draft-ietf-oauth-identity-assertion-authz-grant) for `audience` (a resource AS issuer).
   */
  idJag?: {
    /** Whether `sub` may reach the resource AS `audience`; a refusal answers access_denied. Default: all. */
    allow?: (sub: string, audience: string) => boolean;
  };
  /**
   * Resource-AS mode: registers the RFC 7523 JWT bearer grant and accepts ID-JAGs of `trustedIssuer`,
   * verified against `jwksUri` (iss, aud = this issuer, typ, exp, client_id = the authenticated client).
   */
  jwtBearer?: {
    trustedIssuer: string;
    jwksUri: string;
    /** Whether to honour an assertion for `sub`; a refusal answers invalid_grant. Default: all. */
    allow?: (sub: string) => boolean;
  };
}

/** One token-exchange request as the server received it. */
export interface ExchangeRecord {
  /** The client that authenticated, else the client id it claimed, else ''. */
  clientId: string;
  /** Request parameters without client secrets; a repeated parameter is joined with spaces. */
  params: Record<string, string>;
  /** `'issued'` or the OAuth error code answered. */
  outcome: 'issued' | string;
}

/** A running dev authorization server. */
export interface AuthorizationServer {
  url: string;
  issuer: string;
  tokenEndpoint: string;
  jwksUri: string;
  /**
   * Issue a user ("subject") access token: an RS256 JWT signed with the server's key with sub, scope,
   * aud (default 'agent-service'), iss, iat, exp (default now + 3600; negative gives an expired token), jti.
   */
  issueSubjectToken(input: {
    sub: string;
    scope: string[];
    audience?: string;
    expiresInSeconds?: number;
    extraClaims?: Record<string, unknown>;
  }): Promise<string>;
  /** Issue an actor JWT (the agent's workload identity), signed with the same key; aud defaults to the issuer. */
  issueActorToken(input: { sub: string; audience?: string; expiresInSeconds?: number }): Promise<string>;
  /** Every token-exchange request received, in order. Test data: it holds subject tokens. */
  readonly exchanges: ExchangeRecord[];
  close(): Promise<void>;
}

const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const TOKEN_TYPE_ID_JAG = 'urn:ietf:params:oauth:token-type:id-jag';
const ID_JAG_TYP = 'oauth-id-jag+jwt';
const TOKEN_TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';
const ACCEPTED_TOKEN_TYPES = new Set([TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT]);
const DEFAULT_AUDIENCE = 'urn:delegate-proxy:default';
const DEFAULT_SUBJECT_AUDIENCE = 'agent-service';
const SIGNING_ALG = 'RS256';
// Stored entries (client assertion jtis) are few; sweep expired ones only once there are this many.
const SWEEP_THRESHOLD = 1000;

// RFC 8693 §2.1 request parameters; audience and resource may repeat.
const EXCHANGE_PARAMETERS = [
  'subject_token',
  'subject_token_type',
  'actor_token',
  'actor_token_type',
  'requested_token_type',
  'scope',
  'audience',
  'resource',
];
const REPEATABLE_PARAMETERS = ['audience', 'resource'];
const SECRET_PARAMETERS = new Set(['client_secret', 'client_assertion']);

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  privateJwk: JWK;
}

/** What the token-exchange handler decided that oidc-provider's token model cannot carry itself. */
interface IssuedClaims {
  audience: string[];
  actorSub?: string;
}

/** Start a local OAuth 2.0 authorization server with an RFC 8693 token-exchange grant (dev and tests only). */
export async function startAuthorizationServer(options: AuthorizationServerOptions): Promise<AuthorizationServer> {
  const ttl = options.accessTokenTtlSeconds ?? 300;
  if (!Number.isInteger(ttl) || ttl <= 0) {
    throw new TypeError('options.accessTokenTtlSeconds must be a positive integer');
  }
  const key = await createSigningKey();
  const server = createServer();
  const url = urlOf(await listen(server, options.host ?? '127.0.0.1', options.port ?? 0));
  const issuer = options.issuer ?? url;
  const exchanges: ExchangeRecord[] = [];

  const provider = createProvider({
    issuer,
    key,
    ttl,
    clients: options.clients,
    idJag: options.idJag,
    jwtBearer: options.jwtBearer,
  });
  recordExchanges(provider, exchanges);
  const callback = provider.callback();
  const intercept = options.intercept;
  server.on('request', intercept ? (req, res) => intercept(req, res, () => void callback(req, res)) : callback);

  return {
    url,
    issuer,
    tokenEndpoint: `${url}/token`,
    jwksUri: `${url}/jwks`,
    exchanges,
    issueSubjectToken: (input) =>
      sign(key, issuer, {
        claims: { ...input.extraClaims, scope: input.scope.join(' ') },
        sub: input.sub,
        audience: input.audience ?? DEFAULT_SUBJECT_AUDIENCE,
        expiresInSeconds: input.expiresInSeconds ?? 3600,
        typ: 'at+jwt',
      }),
    issueActorToken: (input) =>
      sign(key, issuer, {
        claims: {},
        sub: input.sub,
        audience: input.audience ?? issuer,
        expiresInSeconds: input.expiresInSeconds ?? 3600,
        typ: 'JWT',
      }),
    close: () => closeServer(server),
  };
}

async function createSigningKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: SIGNING_ALG, use: 'sig' };
  return { kid, privateKey, publicKey, privateJwk };
}

interface ProviderInput {
  issuer: string;
  key: SigningKey;
  ttl: number;
  clients: DevClient[];
  idJag: AuthorizationServerOptions['idJag'];
  jwtBearer: AuthorizationServerOptions['jwtBearer'];
}

function createProvider(input: ProviderInput): Provider {
  // The grant handler decides the audience and actor; the token hooks below read them back per token.
  const issued = new WeakMap<object, IssuedClaims>();
  const configuration: Configuration = {
    adapter: createMemoryAdapterFactory(),
    clients: input.clients.map((c) => toClientMetadata(c, input.jwtBearer !== undefined)),
    // Our own key (not oidc-provider's dev keys) so issueSubjectToken signs with a key in the JWKS.
    jwks: { keys: [input.key.privateJwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    features: {
      devInteractions: { enabled: false },
      // Required for JWT access tokens; resources are resolved by our handler, never by these hooks.
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => undefined,
        useGrantedResource: async () => false,
        getResourceServerInfo: async () => {
          throw new errors.InvalidTarget('resource indicators are only supported with token exchange');
        },
      },
    },
    ttl: { AccessToken: input.ttl },
    // Setting `extra` on the token is overwritten by oidc-provider; this hook is the supported way.
    extraTokenClaims: async (_ctx, token) => {
      const actorSub = issued.get(token)?.actorSub;
      return actorSub === undefined ? undefined : { act: { sub: actorSub } };
    },
    // oidc-provider allows one `aud` value; RFC 8693 allows several audience/resource values.
    formats: {
      customizers: {
        jwt: (_ctx, token, jwt) => {
          const audience = issued.get(token)?.audience;
          if (audience !== undefined && audience.length > 1) {
            jwt.payload.aud = audience;
          }
        },
      },
    },
  };
  const provider = new Provider(input.issuer, configuration);
  provider.registerGrantType(
    TOKEN_EXCHANGE_GRANT,
    tokenExchangeHandler(provider, input.key, input.ttl, issued, input.idJag),
    EXCHANGE_PARAMETERS,
    REPEATABLE_PARAMETERS,
  );
  if (input.jwtBearer) {
    provider.registerGrantType(JWT_BEARER_GRANT, jwtBearerHandler(provider, input.ttl, input.jwtBearer), [
      'assertion',
      'scope',
      'resource',
    ]);
  }
  return provider;
}

/**
 * Per-server storage (used for client assertion replay detection). oidc-provider's own memory adapter
 * is shared by every provider in the process and warns on each start.
 */
function createMemoryAdapterFactory(): (modelName: string) => Adapter {
  const entries = new Map<string, { payload: Record<string, unknown>; expiresAt: number }>();
  return (modelName) => {
    const keyOf = (id: string): string => `${modelName}:${id}`;
    const find = async (id: string): Promise<Record<string, unknown> | undefined> => {
      const entry = entries.get(keyOf(id));
      if (entry === undefined || entry.expiresAt <= Date.now()) return undefined;
      return entry.payload;
    };
    const unsupported = async (): Promise<undefined> => undefined;
    return {
      upsert: async (id, payload, expiresIn) => {
        if (entries.size >= SWEEP_THRESHOLD) sweepExpired(entries);
        const expiresAt = expiresIn === undefined ? Number.POSITIVE_INFINITY : Date.now() + expiresIn * 1000;
        entries.set(keyOf(id), { payload, expiresAt });
      },
      find,
      consume: async (id) => {
        const payload = await find(id);
        if (payload !== undefined) payload.consumed = Math.floor(Date.now() / 1000);
      },
      destroy: async (id) => {
        entries.delete(keyOf(id));
      },
      // Sessions, device codes and grants do not exist on a token-exchange-only server.
      findByUid: unsupported,
      findByUserCode: unsupported,
      revokeByGrantId: unsupported,
    };
  };
}

function sweepExpired(entries: Map<string, { expiresAt: number }>): void {
  const now = Date.now();
  for (const [key, entry] of entries) {
    if (entry.expiresAt <= now) entries.delete(key);
  }
}

function toClientMetadata(client: DevClient, jwtBearer: boolean): ClientMetadata {
  const method = client.tokenEndpointAuthMethod ?? (client.clientSecret === undefined ? 'none' : 'client_secret_basic');
  return {
    client_id: client.clientId,
    ...(client.clientSecret === undefined ? {} : { client_secret: client.clientSecret }),
    ...(client.jwks === undefined ? {} : { jwks: client.jwks }),
    token_endpoint_auth_method: method,
    grant_types: jwtBearer ? [TOKEN_EXCHANGE_GRANT, JWT_BEARER_GRANT] : [TOKEN_EXCHANGE_GRANT],
    // A token-exchange-only client never uses the authorization endpoint.
    response_types: [],
    redirect_uris: [],
  };
}

function tokenExchangeHandler(
  provider: Provider,
  key: SigningKey,
  ttl: number,
  issued: WeakMap<object, IssuedClaims>,
  idJag?: AuthorizationServerOptions['idJag'],
): GrantHandler {
  return async (ctx) => {
    const params = ctx.oidc.params ?? {};
    const client = ctx.oidc.client;
    if (client === undefined) {
      throw new errors.InvalidRequest('client not authenticated');
    }
    const subject = await verifySubject(key, provider.issuer, params);
    // A delegation never outlives the user's own token (delegate-proxy refuses one that would).
    const tokenTtl =
      subject.exp === undefined ? ttl : Math.max(1, Math.min(ttl, subject.exp - Math.ceil(Date.now() / 1000) - 1));
    const actorSub = await verifyActor(key, provider.issuer, params);
    if (idJag !== undefined && single(params, 'requested_token_type') === TOKEN_TYPE_ID_JAG) {
      ctx.body = await issueIdJag(key, provider.issuer, client.clientId, subject, params, tokenTtl, idJag);
      return;
    }
    checkRequestedTokenType(params);
    const scope = grantScope(single(params, 'scope'), subject.scope);
    const audience = requestedAudience(params);
    const target = audience[0] ?? DEFAULT_AUDIENCE;

    const token = jwtAccessToken(provider, {
      accountId: subject.sub,
      client,
      gty: TOKEN_EXCHANGE_GRANT,
      scope,
      target,
      ttl: tokenTtl,
    });
    issued.set(token, { audience, ...(actorSub === undefined ? {} : { actorSub }) });
    ctx.oidc.entity('AccessToken', token);
    const accessToken = await token.save();

    // RFC 8693 §2.2.1
    ctx.body = {
      access_token: accessToken,
      issued_token_type: TOKEN_TYPE_ACCESS_TOKEN,
      token_type: token.tokenType,
      expires_in: token.expiration,
      ...(scope === '' ? {} : { scope }),
    };
  };
}

type Params = Readonly<Record<string, unknown>>;
type GrantHandler = (ctx: TokenEndpointGrantContext) => Promise<void>;
type AccessTokenInit = ConstructorParameters<Provider['AccessToken']>[0];

/**
 * A JWT access token for the resource `target`, carrying `scope` (none when empty) and living `ttl`
 * seconds. It has no grant: oidc-provider's types ask for a `grantId`, which a token issued by a
 * token exchange or a JWT bearer assertion does not have (no authorization grant is stored).
 */
function jwtAccessToken(
  provider: Provider,
  init: Pick<AccessTokenInit, 'accountId' | 'client' | 'gty'> & { scope: string; target: string; ttl: number },
): AccessToken {
  const { scope, target, ttl } = init;
  const grantless: Omit<AccessTokenInit, 'grantId'> = {
    accountId: init.accountId,
    client: init.client,
    ...(scope === '' ? {} : { scope }),
    gty: init.gty,
    expiresIn: ttl,
  };
  const token = new provider.AccessToken(grantless as AccessTokenInit);
  token.resourceServer = new provider.ResourceServer(target, {
    scope,
    audience: target,
    accessTokenFormat: 'jwt',
    accessTokenTTL: ttl,
    jwt: { sign: { alg: SIGNING_ALG } },
  });
  return token;
}

/** The ID-JAG token-exchange response and claims (draft-ietf-oauth-identity-assertion-authz-grant). */
async function issueIdJag(
  key: SigningKey,
  issuer: string,
  clientId: string,
  subject: { sub: string; scope: string },
  params: Params,
  ttl: number,
  options: NonNullable<AuthorizationServerOptions['idJag']>,
): Promise<Record<string, unknown>> {
  const audience = requireParam(params, 'audience');
  if (options.allow && !options.allow(subject.sub, audience)) {
    throw new errors.AccessDenied(`${subject.sub} may not use ${audience}`);
  }
  const scope = grantScope(single(params, 'scope'), subject.scope);
  const resource = single(params, 'resource');
  const jag = await sign(key, issuer, {
    // client_id: the client at the resource AS that may redeem it (same id in this dev setup).
    claims: {
      client_id: clientId,
      ...(scope === '' ? {} : { scope }),
      ...(resource === undefined ? {} : { resource }),
    },
    sub: subject.sub,
    audience,
    expiresInSeconds: ttl,
    typ: ID_JAG_TYP,
  });
  return {
    access_token: jag,
    issued_token_type: TOKEN_TYPE_ID_JAG,
    token_type: 'N_A',
    expires_in: ttl,
    ...(scope === '' ? {} : { scope }),
  };
}

/** RFC 7523 §2.1 with an ID-JAG as the assertion (the draft's redemption step): checks it, then issues this server's own token. */
function jwtBearerHandler(
  provider: Provider,
  ttl: number,
  options: NonNullable<AuthorizationServerOptions['jwtBearer']>,
): GrantHandler {
  const jwks = createRemoteJWKSet(new URL(options.jwksUri));
  return async (ctx) => {
    const params = ctx.oidc.params ?? {};
    const client = ctx.oidc.client;
    if (client === undefined) throw new errors.InvalidRequest('client not authenticated');
    const assertion = requireParam(params, 'assertion');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(assertion, jwks, {
        issuer: options.trustedIssuer,
        audience: provider.issuer,
        typ: ID_JAG_TYP,
        algorithms: [SIGNING_ALG],
      }));
    } catch (err) {
      throw new errors.InvalidGrant(`assertion refused: ${(err as Error).message}`);
    }
    if (payload.client_id !== client.clientId) throw new errors.InvalidGrant('assertion is bound to another client');
    if (typeof payload.sub !== 'string' || typeof payload.exp !== 'number')
      throw new errors.InvalidGrant('assertion lacks sub or exp');
    if (options.allow && !options.allow(payload.sub))
      throw new errors.InvalidGrant(`${payload.sub} is not allowed here`);
    const scope = grantScope(single(params, 'scope'), typeof payload.scope === 'string' ? payload.scope : '');
    const target =
      single(params, 'resource') ?? (typeof payload.resource === 'string' ? payload.resource : DEFAULT_AUDIENCE);
    const tokenTtl = Math.max(1, Math.min(ttl, payload.exp - Math.ceil(Date.now() / 1000)));
    const token = jwtAccessToken(provider, {
      accountId: payload.sub,
      client,
      gty: JWT_BEARER_GRANT,
      scope,
      target,
      ttl: tokenTtl,
    });
    ctx.oidc.entity('AccessToken', token);
    const accessToken = await token.save();
    ctx.body = {
      access_token: accessToken,
      token_type: token.tokenType,
      expires_in: token.expiration,
      ...(scope === '' ? {} : { scope }),
    };
  };
}

function single(params: Params, name: string): string | undefined {
  return all(params, name)[0];
}

function all(params: Params, name: string): string[] {
  const value = params[name];
  return (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string');
}

function requireParam(params: Params, name: string): string {
  const value = single(params, name);
  if (value === undefined || value === '') {
    throw new errors.InvalidRequest(`missing required parameter '${name}'`);
  }
  return value;
}

function checkTokenType(params: Params, name: string): void {
  const type = requireParam(params, name);
  if (!ACCEPTED_TOKEN_TYPES.has(type)) {
    throw new errors.InvalidRequest(`unsupported ${name}`);
  }
}

async function verifySubject(
  key: SigningKey,
  issuer: string,
  params: Params,
): Promise<{ sub: string; scope: string; exp?: number }> {
  const token = requireParam(params, 'subject_token');
  checkTokenType(params, 'subject_token_type');
  const payload = await verifyOwnJwt(key, issuer, token);
  if (payload === undefined || typeof payload.sub !== 'string') {
    throw new errors.InvalidGrant('subject_token is not a valid token of this server');
  }
  return {
    sub: payload.sub,
    scope: typeof payload.scope === 'string' ? payload.scope : '',
    ...(typeof payload.exp === 'number' ? { exp: payload.exp } : {}),
  };
}

// A bad actor token answers invalid_request (RFC 8693 §2.2.2), not invalid_grant: the actor is the
// agent's own identity, so the failure is the deployment's, not the user's token's.
async function verifyActor(key: SigningKey, issuer: string, params: Params): Promise<string | undefined> {
  const token = single(params, 'actor_token');
  if (token === undefined) {
    if (single(params, 'actor_token_type') !== undefined) {
      throw new errors.InvalidRequest('actor_token_type given without actor_token');
    }
    return undefined;
  }
  checkTokenType(params, 'actor_token_type');
  const payload = await verifyOwnJwt(key, issuer, token);
  if (payload === undefined || typeof payload.sub !== 'string') {
    throw new errors.InvalidRequest('actor_token is not a valid token of this server');
  }
  return payload.sub;
}

async function verifyOwnJwt(key: SigningKey, issuer: string, token: string): Promise<JWTPayload | undefined> {
  try {
    const { payload } = await jwtVerify(token, key.publicKey, { issuer, algorithms: [SIGNING_ALG] });
    return payload;
  } catch {
    return undefined;
  }
}

function checkRequestedTokenType(params: Params): void {
  const requested = single(params, 'requested_token_type');
  if (requested !== undefined && requested !== TOKEN_TYPE_ACCESS_TOKEN) {
    throw new errors.InvalidRequest('only access tokens can be issued');
  }
}

/** The requested scope must be a subset of the user's grants (the subject token's scope). */
function grantScope(requested: string | undefined, subjectScope: string): string {
  const granted = new Set(subjectScope.split(' ').filter(Boolean));
  if (requested === undefined || requested.trim() === '') {
    return [...granted].join(' ');
  }
  const wanted = [...new Set(requested.split(' ').filter(Boolean))];
  const missing = wanted.filter((scope) => !granted.has(scope));
  if (missing.length > 0) {
    throw new errors.InvalidScope('requested scope exceeds the subject token scope', missing.join(' '));
  }
  return wanted.join(' ');
}

/** Resources first (RFC 8707 absolute URIs without fragment), then audiences (any string), deduplicated. */
function requestedAudience(params: Params): string[] {
  const resources = all(params, 'resource');
  for (const resource of resources) {
    if (!URL.canParse(resource) || resource.includes('#')) {
      throw new errors.InvalidTarget('resource must be an absolute URI without a fragment (RFC 8707 §2)');
    }
  }
  const audiences = all(params, 'audience');
  if (audiences.some((audience) => audience === '')) {
    throw new errors.InvalidTarget('audience must not be empty');
  }
  return [...new Set([...resources, ...audiences])];
}

function recordExchanges(provider: Provider, exchanges: ExchangeRecord[]): void {
  const record = (ctx: KoaContextWithOIDC, outcome: string): void => {
    const params = ctx.oidc.params ?? {};
    const grant = single(params, 'grant_type');
    if (grant !== TOKEN_EXCHANGE_GRANT && grant !== JWT_BEARER_GRANT) return;
    exchanges.push({
      clientId: ctx.oidc.client?.clientId ?? single(params, 'client_id') ?? '',
      params: recordedParams(params),
      outcome,
    });
  };
  provider.on('grant.success', (ctx) => record(ctx, 'issued'));
  provider.on('grant.error', (ctx, error) => record(ctx, error.error ?? error.message));
  provider.on('server_error', (ctx) => record(ctx, 'server_error'));
}

function recordedParams(params: Params): Record<string, string> {
  const recorded: Record<string, string> = {};
  for (const name of Object.keys(params)) {
    const values = all(params, name);
    if (values.length === 0 || SECRET_PARAMETERS.has(name)) continue;
    recorded[name] = values.join(' ');
  }
  return recorded;
}

async function sign(
  key: SigningKey,
  issuer: string,
  input: { claims: Record<string, unknown>; sub: string; audience: string; expiresInSeconds: number; typ: string },
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(input.claims)
    .setProtectedHeader({ alg: SIGNING_ALG, kid: key.kid, typ: input.typ })
    .setIssuer(issuer)
    .setSubject(input.sub)
    .setAudience(input.audience)
    .setIssuedAt(now)
    .setExpirationTime(now + input.expiresInSeconds)
    .setJti(randomUUID())
    .sign(key.privateKey);
}
