import type { IncomingHttpHeaders } from 'node:http';
import { ProxyError } from '../errors.js';

/** RFC 6750 §2.1 b64token. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const MAX_TOKEN_LENGTH = 16 * 1024;

/**
 * Takes the user's token out of the request headers (RFC 6750 §2.1) and removes the header so it can
 * never be forwarded. Missing, duplicated or malformed -> 401 invalid_token / invalid_request.
 */
export function takeSubjectToken(headers: IncomingHttpHeaders, rawHeaders: readonly string[], header: string): string {
  return bearerTokenOf(takeCredentialHeader(headers, rawHeaders, header));
}

/**
 * The token header's one value, removed from the request (before anything else can forward it).
 * Missing -> 401 invalid_token; more than one -> 400 invalid_request.
 */
export function takeCredentialHeader(
  headers: IncomingHttpHeaders,
  rawHeaders: readonly string[],
  header: string,
): string {
  const value = headers[header];
  delete headers[header];
  if (value === undefined || value === '') {
    throw new ProxyError('invalid_token', 'a bearer token is required', { detail: `no ${header} header` });
  }
  // Node keeps only the first duplicate of some headers (authorization among them): count raw ones.
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    // Length first: no lower-cased copy of every header name per request.
    if (name.length === header.length && name.toLowerCase() === header) count++;
  }
  if (count > 1 || Array.isArray(value)) {
    throw new ProxyError('invalid_request', `more than one ${header} header`);
  }
  return value;
}

/** The token of a `Bearer <token>` header value (RFC 6750 §2.1); otherwise 401 invalid_token. */
export function bearerTokenOf(value: string): string {
  const space = value.indexOf(' ');
  const scheme = space === -1 ? value : value.slice(0, space);
  if (scheme.toLowerCase() !== 'bearer') {
    throw new ProxyError('invalid_token', 'the Bearer authentication scheme is required', {
      detail: 'authorization scheme is not Bearer',
    });
  }
  const token = value.slice(space + 1).trim();
  if (token.length === 0 || token.length > MAX_TOKEN_LENGTH || !B64TOKEN.test(token)) {
    throw new ProxyError('invalid_token', 'the bearer token is malformed');
  }
  return token;
}
