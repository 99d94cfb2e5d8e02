import type { ServerSecrets } from '../config/load.js';
import type { AuthorizationServerConfig } from '../config/schema.js';
import { parseSigningKey } from '../config/signing-key.js';
import { ConfigError } from '../errors.js';
import type { Clock } from '../pipeline/clock.js';
import { type ClientAuthenticator, clientSecretBasic, clientSecretPost, noClientAuth } from './client-auth.js';
import { privateKeyJwt } from './private-key-jwt.js';

export interface ClientAuthOptions {
  /** The token endpoint currently in use (configured or discovered): the assertion's `aud`. */
  readonly tokenEndpoint: () => string;
  /** For assertion times; default system time (the AS checks them against its own clock). */
  readonly clock?: Clock;
}

/** The client authentication of one authorization server; `path` names it in errors. */
export function createServerClientAuth(
  as: Pick<AuthorizationServerConfig, 'clientAuth' | 'clientId'>,
  secrets: ServerSecrets,
  path: string,
  options: ClientAuthOptions,
): ClientAuthenticator {
  const secret = secrets.clientSecret;
  switch (as.clientAuth) {
    case 'client_secret_basic':
      return clientSecretBasic(as.clientId, secret ?? '');
    case 'client_secret_post':
      return clientSecretPost(as.clientId, secret ?? '');
    case 'none':
      return noClientAuth(as.clientId);
    case 'private_key_jwt': {
      const text = secrets.privateKey;
      if (text === undefined) throw new ConfigError([`${path}.privateKeyFile: no private key was loaded`]);
      return privateKeyJwt({
        clientId: as.clientId,
        key: parseSigningKey(text),
        audience: options.tokenEndpoint,
        ...(options.clock ? { clock: options.clock } : {}),
      });
    }
  }
}
