/**
 * Client authentication at the token endpoint. `apply` adds what the method needs to the form body
 * and headers of one token request.
 */
export interface ClientAuthenticator {
  readonly method: string;
  apply(form: URLSearchParams, headers: Record<string, string>): void | Promise<void>;
}

/** RFC 6749 §2.3.1 / Appendix B: id and secret are form-urlencoded before Basic encoding. */
function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

export function clientSecretBasic(clientId: string, clientSecret: string): ClientAuthenticator {
  const header = `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`).toString('base64')}`;
  return {
    method: 'client_secret_basic',
    apply(_form, headers) {
      headers.authorization = header;
    },
  };
}

export function clientSecretPost(clientId: string, clientSecret: string): ClientAuthenticator {
  return {
    method: 'client_secret_post',
    apply(form) {
      form.set('client_id', clientId);
      form.set('client_secret', clientSecret);
    },
  };
}

/** Public client (RFC 6749 §2.1): identifies itself, proves nothing. */
export function noClientAuth(clientId: string): ClientAuthenticator {
  return {
    method: 'none',
    apply(form) {
      form.set('client_id', clientId);
    },
  };
}
