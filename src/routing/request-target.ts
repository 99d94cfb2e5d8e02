import { ProxyError } from '../errors.js';

/**
 * Checks the request target before routing (RFC 9112 §3.2). Only origin-form is accepted: an
 * absolute-form target or authority-form (CONNECT) could otherwise make this an open proxy, and
 * `.`/`..` segments (also percent-encoded) could escape a route prefix at the upstream.
 */
export function checkRequestTarget(method: string | undefined, url: string | undefined): string {
  if (method === 'CONNECT') {
    throw new ProxyError('method_not_allowed', 'CONNECT is not supported', { headers: { allow: 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS' } });
  }
  if (url === undefined || url.charCodeAt(0) !== 47 /* / */ || url.startsWith('//')) {
    throw new ProxyError('invalid_request', 'only origin-form request targets are accepted', {
      detail: 'absolute-form, authority-form or asterisk-form target refused',
    });
  }
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  if (path.includes('\\')) throw new ProxyError('invalid_request', 'backslash in request path');
  // Fast path: no dot segment possible without a '.' or a '%'.
  if (path.includes('.') || path.includes('%')) {
    for (const segment of path.split('/')) {
      let decoded: string;
      try {
        decoded = decodeURIComponent(segment);
      } catch {
        throw new ProxyError('invalid_request', 'malformed percent-encoding in request path');
      }
      // `..;x` is `..` to servlet containers (path parameters, RFC 3986 §3.3): refused the same way.
      const bare = decoded.split(';', 1)[0];
      if (bare === '.' || bare === '..' || decoded.includes('/') || decoded.includes('\\')) {
        throw new ProxyError('invalid_request', 'dot segments and encoded slashes are not allowed in the request path');
      }
    }
  }
  return url;
}
