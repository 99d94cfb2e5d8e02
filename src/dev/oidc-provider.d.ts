// oidc-provider 9.x ships no type declarations. This declares only the part that the dev
// authorization server uses, so a wrong call still fails type-checking.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export interface ClientMetadata {
    client_id: string;
    client_secret?: string;
    token_endpoint_auth_method?: string;
    grant_types?: string[];
    response_types?: string[];
    redirect_uris?: string[];
    jwks?: { keys: object[] };
  }

  export interface ResourceServerInfo {
    scope: string;
    audience?: string;
    accessTokenTTL?: number;
    accessTokenFormat?: 'opaque' | 'jwt';
    jwt?: { sign?: { alg?: string } };
  }

  export interface ResourceServer extends ResourceServerInfo {
    identifier(): string;
  }

  export interface Client {
    readonly clientId: string;
  }

  export interface OidcContext {
    readonly params?: Record<string, string | string[] | undefined>;
    readonly client?: Client;
    entity(name: string, value: unknown): void;
  }

  /** The Koa context handed to grant handlers and provider events. */
  export interface KoaContextWithOIDC {
    oidc: OidcContext;
    body: unknown;
  }

  export interface AccessToken {
    readonly jti?: string;
    readonly expiration: number;
    readonly tokenType: string;
    scope?: string;
    resourceServer?: ResourceServer;
    save(): Promise<string>;
  }

  export interface AccessTokenInput {
    accountId: string;
    client: Client;
    scope?: string;
    gty?: string;
    expiresIn?: number;
  }

  export interface Adapter {
    upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void>;
    find(id: string): Promise<Record<string, unknown> | undefined>;
    findByUserCode(userCode: string): Promise<Record<string, unknown> | undefined>;
    findByUid(uid: string): Promise<Record<string, unknown> | undefined>;
    consume(id: string): Promise<void>;
    destroy(id: string): Promise<void>;
    revokeByGrantId(grantId: string): Promise<void>;
  }

  export interface Configuration {
    adapter?: (modelName: string) => Adapter;
    clients?: ClientMetadata[];
    jwks?: { keys: object[] };
    cookies?: { keys: string[] };
    features?: Record<string, Record<string, unknown>>;
    ttl?: Record<string, number | ((ctx: KoaContextWithOIDC, token: AccessToken, client: Client) => number)>;
    extraTokenClaims?: (ctx: KoaContextWithOIDC, token: AccessToken) => Promise<Record<string, unknown> | undefined>;
    formats?: {
      customizers?: {
        jwt?: (
          ctx: KoaContextWithOIDC,
          token: AccessToken,
          jwt: { header: unknown; payload: Record<string, unknown> },
        ) => Promise<void> | void;
      };
    };
    renderError?: (ctx: KoaContextWithOIDC, out: Record<string, unknown>, error: Error) => Promise<void>;
  }

  export type GrantHandler = (ctx: KoaContextWithOIDC) => Promise<void>;

  export class Provider {
    constructor(issuer: string, configuration?: Configuration);
    readonly issuer: string;
    readonly AccessToken: new (
      input: AccessTokenInput,
    ) => AccessToken;
    readonly ResourceServer: new (
      identifier: string,
      info: ResourceServerInfo,
    ) => ResourceServer;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    registerGrantType(
      name: string,
      handler: GrantHandler,
      parameters?: Iterable<string>,
      allowedDuplicateParameters?: Iterable<string>,
    ): void;
    on(event: 'grant.success', listener: (ctx: KoaContextWithOIDC) => void): this;
    on(
      event: 'grant.error' | 'server_error',
      listener: (ctx: KoaContextWithOIDC, error: Error & { error?: string }) => void,
    ): this;
  }

  // Constructor shapes differ per class (InvalidGrant takes only an internal detail, InvalidRequest's
  // second argument is an HTTP status): declare only the forms used.
  export const errors: {
    readonly InvalidGrant: new (detail?: string) => Error;
    readonly AccessDenied: new (description?: string) => Error;
    readonly InvalidRequest: new (description: string) => Error;
    readonly InvalidScope: new (description: string, scope?: string) => Error;
    readonly InvalidTarget: new (description: string) => Error;
  };

  export default Provider;
}
