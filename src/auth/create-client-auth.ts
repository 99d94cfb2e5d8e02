import type { ResolvedConfig } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { type ClientAuthenticator, clientSecretBasic, clientSecretPost, noClientAuth } from './client-auth.js';

/** Picks the client authentication method configured for the token endpoint. */
export function createClientAuth(config: ResolvedConfig): ClientAuthenticator {
  const as = config.authorizationServer;
  const secret = config.secrets.clientSecret;
  switch (as.clientAuth) {
    case 'client_secret_basic':
      return clientSecretBasic(as.clientId, secret ?? '');
    case 'client_secret_post':
      return clientSecretPost(as.clientId, secret ?? '');
    case 'none':
      return noClientAuth(as.clientId);
    case 'private_key_jwt':
      throw new ConfigError(['authorizationServer.clientAuth: private_key_jwt is not available in this build']);
  }
}
