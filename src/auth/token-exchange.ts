import type { Dispatcher } from 'undici';
import { type ExchangeOutcome, TokenExchangeError } from '../errors.js';
import { readBoundedText } from '../http/read-bounded.js';
import { request } from '../http/undici.js';
import type { ClientAuthenticator } from './client-auth.js';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** RFC 7523 §2.1. */
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const MAX_RESPONSE_BYTES = 64 * 1024;

export interface ExchangeRequest {
  readonly subjectToken: string;
  readonly subjectTokenType: string;
  readonly requestedTokenType: string;
  /** Sorted and de-duplicated. */
  readonly scopes: readonly string[];
  readonly audience?: string | undefined;
  readonly resource?: string | undefined;
  readonly actorToken?: string | undefined;
  readonly actorTokenType?: string | undefined;
  /**
   * Set for an RFC 7523 §2.1 JWT bearer grant instead of an exchange (docs/cross-domain.md):
   * the ID-JAG; subject and actor fields are then not sent.
   */
  readonly assertion?: string | undefined;
}

export interface IssuedToken {
  readonly accessToken: string;
  readonly issuedTokenType: string;
  /** `Bearer` or `N_A` (RFC 8693 §2.2.1). */
  readonly tokenType: string;
  /** Seconds, when the AS said. */
  readonly expiresIn: number | undefined;
  /** What was granted: the AS's `scope`, or the requested scopes when it omitted it (RFC 6749 §5.1). */
  readonly scopes: readonly string[];
}

export interface TokenExchangeClientOptions {
  /** Current token endpoint (it may come from discovery and change). */
  readonly tokenEndpoint: () => string;
  readonly dispatcher: Dispatcher;
  readonly clientAuth: ClientAuthenticator;
  readonly timeoutMs: number;
}

export interface TokenExchangeClient {
  exchange(req: ExchangeRequest, signal?: AbortSignal): Promise<IssuedToken>;
}

/** RFC 8693 §2.1 request form. */
export function buildExchangeForm(req: ExchangeRequest): URLSearchParams {
  const form = new URLSearchParams();
  if (req.assertion !== undefined) {
    form.set('grant_type', JWT_BEARER_GRANT);
    form.set('assertion', req.assertion);
    if (req.scopes.length > 0) form.set('scope', req.scopes.join(' '));
    if (req.resource !== undefined) form.set('resource', req.resource);
    return form;
  }
  form.set('grant_type', TOKEN_EXCHANGE_GRANT);
  form.set('subject_token', req.subjectToken);
  form.set('subject_token_type', req.subjectTokenType);
  form.set('requested_token_type', req.requestedTokenType);
  if (req.scopes.length > 0) form.set('scope', req.scopes.join(' '));
  if (req.resource !== undefined) form.set('resource', req.resource);
  if (req.audience !== undefined) form.set('audience', req.audience);
  if (req.actorToken !== undefined && req.actorTokenType !== undefined) {
    form.set('actor_token', req.actorToken);
    form.set('actor_token_type', req.actorTokenType);
  }
  return form;
}

export function createTokenExchangeClient(options: TokenExchangeClientOptions): TokenExchangeClient {
  return {
    async exchange(req, signal) {
      const form = buildExchangeForm(req);
      const headers: Record<string, string> = {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      };
      await options.clientAuth.apply(form, headers);
      const timeout = AbortSignal.timeout(options.timeoutMs);
      const endpoint = options.tokenEndpoint();
      let status: number;
      let text: string;
      try {
        const res = await request(endpoint, {
          method: 'POST',
          headers,
          body: form.toString(),
          dispatcher: options.dispatcher,
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
        status = res.statusCode;
        text = await readBoundedText(res.body, MAX_RESPONSE_BYTES, 'token endpoint response');
      } catch (err) {
        // The caller's signal may carry a shorter per-attempt timeout (retry-policy.ts).
        const timedOut =
          timeout.aborted ||
          (signal?.aborted === true && (signal.reason as Error | undefined)?.name === 'TimeoutError');
        throw unavailable(timedOut ? 'the authorization server timed out' : 'the authorization server is unreachable', {
          detail: `${timedOut ? 'timeout' : 'network error'} calling token endpoint ${endpoint}: ${(err as Error).message}`,
          cause: err,
        });
      }
      return interpret(status, text, req);
    },
  };
}

function unavailable(description: string, extra: { detail: string; cause?: unknown }): TokenExchangeError {
  return new TokenExchangeError('temporarily_unavailable', description, 'unavailable', {
    ...extra,
    retryAfterSeconds: 5,
  });
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Maps the token endpoint's answer (RFC 6749 §5.1/§5.2, RFC 8693 §2.2) to a token or an error. */
export function interpret(status: number, text: string, req: ExchangeRequest): IssuedToken {
  const body = parseJson(text);
  if (status >= 500) {
    throw unavailable('the authorization server is unavailable', { detail: `token endpoint answered ${status}` });
  }
  if (status !== 200) {
    const asError = typeof body?.error === 'string' ? body.error : undefined;
    const asDescription = typeof body?.error_description === 'string' ? body.error_description : undefined;
    throw asErrorToProxyError(status, asError, asDescription, req);
  }
  if (!body) throw rejected('token endpoint answered 200 without a JSON object');
  const accessToken = body.access_token;
  if (typeof accessToken !== 'string' || accessToken.length === 0) throw rejected('no access_token in response');
  const tokenType = body.token_type;
  if (typeof tokenType !== 'string' || !/^(bearer|n_a)$/i.test(tokenType)) {
    throw rejected(`token_type ${JSON.stringify(tokenType)} is neither Bearer nor N_A`);
  }
  const issuedTokenType = body.issued_token_type ?? req.requestedTokenType;
  if (issuedTokenType !== req.requestedTokenType) {
    throw rejected(`issued_token_type ${String(issuedTokenType)} differs from requested ${req.requestedTokenType}`);
  }
  let expiresIn: number | undefined;
  if (body.expires_in !== undefined) {
    const n = Number(body.expires_in);
    if (!Number.isFinite(n) || n <= 0)
      throw rejected(`expires_in ${JSON.stringify(body.expires_in)} is not a positive number`);
    expiresIn = n;
  }
  let scopes = req.scopes;
  if (body.scope !== undefined) {
    if (typeof body.scope !== 'string') throw rejected('scope is not a string');
    const granted = body.scope.split(' ').filter((s) => s !== '');
    const extra = granted.filter((s) => !req.scopes.includes(s));
    // Least privilege: a token wider than asked for is not used (RFC 8693 §2.2.1 scope). A route
    // that asks for no scope leaves the choice to the AS's defaults (RFC 6749 §3.3).
    if (req.scopes.length > 0 && extra.length > 0)
      throw rejected(`granted scope exceeds the request: ${extra.join(' ')}`);
    scopes = [...new Set(granted)].sort();
  }
  return { accessToken, issuedTokenType: String(issuedTokenType), tokenType, expiresIn, scopes };
}

function rejected(detail: string): TokenExchangeError {
  return new TokenExchangeError('bad_gateway', 'the authorization server issued an unusable token', 'rejected', {
    detail,
  });
}

function asErrorToProxyError(
  status: number,
  asError: string | undefined,
  asDescription: string | undefined,
  req: ExchangeRequest,
): TokenExchangeError {
  const detail = `token endpoint answered ${status} ${asError ?? '(no error code)'}${asDescription ? `: ${asDescription}` : ''}`;
  const opts = { detail, ...(asError === undefined ? {} : { asError }) };
  switch (asError) {
    case 'invalid_grant':
      return new TokenExchangeError(
        'invalid_token',
        'the user token was not accepted for delegation',
        'invalid_grant',
        opts,
      );
    case 'invalid_scope':
    case 'invalid_target':
    case 'unauthorized_client': {
      const outcome: Exclude<ExchangeOutcome, 'success'> =
        asError === 'invalid_scope' ? 'invalid_scope' : asError === 'invalid_target' ? 'invalid_target' : 'error';
      return new TokenExchangeError('insufficient_scope', 'the delegation needed for this route was refused', outcome, {
        ...opts,
        scope: req.scopes,
      });
    }
    case 'invalid_client':
      return new TokenExchangeError(
        'bad_gateway',
        'the proxy could not authenticate to the authorization server',
        'invalid_client',
        opts,
      );
    default:
      if (status === 401) {
        return new TokenExchangeError(
          'bad_gateway',
          'the proxy could not authenticate to the authorization server',
          'invalid_client',
          opts,
        );
      }
      return new TokenExchangeError(
        'bad_gateway',
        'the authorization server refused the token exchange',
        'error',
        opts,
      );
  }
}
