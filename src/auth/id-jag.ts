import { decodeProtectedHeader } from 'jose/decode/protected_header';
import { decodeJwt } from 'jose/jwt/decode';
import type { Logger } from 'pino';
import { TokenExchangeError } from '../errors.js';
import type { Clock } from '../pipeline/clock.js';
import type { ExchangeRequest, IssuedToken, TokenExchangeClient } from './token-exchange.js';

/** draft-ietf-oauth-identity-assertion-authz-grant (docs/cross-domain.md): token type and JWT `typ`. */
export const ID_JAG_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id-jag';
export const ID_JAG_TYP = 'oauth-id-jag+jwt';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

export interface IdJagClientOptions {
  /** The route's authorizationServer: the IdP that issues the ID-JAG (RFC 8693 exchange). */
  readonly idp: TokenExchangeClient;
  /** The resourceAuthorizationServer: redeems the ID-JAG with an RFC 7523 JWT bearer grant. */
  readonly resource: TokenExchangeClient;
  /** Its issuer identifier: the ID-JAG's `audience` and required `aud`. */
  readonly resourceIssuer: string;
  readonly idpName: string;
  readonly resourceName: string;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * One "exchange" that is the two steps of Cross App Access (docs/cross-domain.md): the
 * token service caches, deduplicates and refreshes its result as one entry, so both steps are
 * always renewed together. The ID-JAG itself never leaves this function.
 */
export function createIdJagClient(o: IdJagClientOptions): TokenExchangeClient {
  return {
    async exchange(req, signal) {
      const jagRequest: ExchangeRequest = { ...req, requestedTokenType: ID_JAG_TOKEN_TYPE, audience: o.resourceIssuer };
      let jag: IssuedToken;
      try {
        jag = await o.idp.exchange(jagRequest, signal);
        checkIdJag(jag, o.resourceIssuer, o.clock.now());
      } catch (err) {
        audit(o, 'id_jag', o.idpName, err);
        throw refusal(err, 'the identity provider refused delegation to this application');
      }
      audit(o, 'id_jag', o.idpName, undefined);
      try {
        const issued = await o.resource.exchange(
          {
            // subjectToken keys the invalid_grant memory; only `assertion` is sent (RFC 7523 §2.1).
            subjectToken: jag.accessToken,
            subjectTokenType: ID_JAG_TOKEN_TYPE,
            requestedTokenType: ACCESS_TOKEN_TYPE,
            scopes: req.scopes,
            resource: req.resource,
            assertion: jag.accessToken,
          },
          signal,
        );
        audit(o, 'jwt_bearer', o.resourceName, undefined);
        return issued;
      } catch (err) {
        audit(o, 'jwt_bearer', o.resourceName, err);
        throw refusal(err, 'the resource authorization server refused the identity assertion');
      }
    },
  };
}

/** The requesting client's checks (docs/cross-domain.md): what the IdP answered must be an ID-JAG for that resource AS. */
export function checkIdJag(jag: IssuedToken, resourceIssuer: string, now: number): void {
  const fail = (detail: string) =>
    new TokenExchangeError('bad_gateway', 'the identity provider issued an unusable identity assertion', 'rejected', {
      detail,
    });
  if (jag.issuedTokenType !== ID_JAG_TOKEN_TYPE)
    throw fail(`issued_token_type ${jag.issuedTokenType} is not the ID-JAG type`);
  if (jag.tokenType.toUpperCase() !== 'N_A') throw fail(`token_type ${jag.tokenType} is not N_A`);
  let typ: unknown;
  let claims: ReturnType<typeof decodeJwt>;
  try {
    typ = decodeProtectedHeader(jag.accessToken).typ;
    claims = decodeJwt(jag.accessToken);
  } catch {
    throw fail('the ID-JAG is not a JWT');
  }
  if (typeof typ !== 'string' || typ.toLowerCase() !== ID_JAG_TYP)
    throw fail(`typ ${JSON.stringify(typ ?? null)} is not ${ID_JAG_TYP}`);
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.includes(resourceIssuer)) throw fail(`aud ${JSON.stringify(claims.aud ?? null)} is not ${resourceIssuer}`);
  if (typeof claims.exp !== 'number' || claims.exp * 1000 <= now) throw fail('the ID-JAG has no exp or has expired');
}

/**
 * A refusal by either server is a 403 with its reason; availability (503), a bad answer (502) and an
 * invalid user token at the IdP (401) keep today's mapping (src/auth/token-exchange.ts).
 */
function refusal(err: unknown, description: string): unknown {
  if (!(err instanceof TokenExchangeError) || err.asError === undefined) return err;
  if (err.asError === 'invalid_client') return err;
  // invalid_grant from the IdP is about the user token; from the resource AS, about the ID-JAG.
  if (err.asError === 'invalid_grant' && description.startsWith('the identity provider')) return err;
  // The AS's error code is a fixed RFC 6749 §5.2 token, safe to show; its description stays in the log.
  return new TokenExchangeError('insufficient_scope', `${description} (${err.asError})`, err.outcome, {
    ...(err.detail === undefined ? {} : { detail: err.detail }),
    asError: err.asError,
    cause: err,
  });
}

function audit(o: IdJagClientOptions, step: 'id_jag' | 'jwt_bearer', server: string, err: unknown): void {
  if (err === undefined) {
    o.logger.info({ audit: 'cross_app_access', step, server, outcome: 'success' }, `${step} step done`);
    return;
  }
  const outcome = err instanceof TokenExchangeError ? err.outcome : 'error';
  o.logger.info(
    {
      audit: 'cross_app_access',
      step,
      server,
      outcome,
      detail: err instanceof TokenExchangeError ? err.detail : String(err),
    },
    `${step} step failed`,
  );
}
