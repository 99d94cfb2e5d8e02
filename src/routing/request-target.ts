import { ProxyError } from '../errors.js';

/** Control characters (C0 and DEL), raw or percent-encoded (RFC 3986 §2.1: either hex case). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const CONTROL = /[\x00-\x1f\x7f]|%(?:[01][0-9a-f]|7f)/i;

/**
 * Checks the request target before routing (RFC 9112 §3.2). Only origin-form is accepted: an
 * absolute-form target or authority-form (CONNECT) could otherwise make this an open proxy, and
 * `.`/`..` segments (also percent-encoded) could escape a route prefix at the upstream.
 */
export function checkRequestTarget(method: string | undefined, url: string | undefined): string {
  if (method === 'CONNECT') {
    throw new ProxyError('method_not_allowed', 'CONNECT is not supported', {
      headers: { allow: 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS' },
    });
  }
  if (url === undefined || url.charCodeAt(0) !== 47 /* / */ || url.startsWith('//')) {
    throw new ProxyError('invalid_request', 'only origin-form request targets are accepted', {
      detail: 'absolute-form, authority-form or asterisk-form target refused',
    });
  }
  // A NUL, line break or other control character has no place in a target, and servers differ on
  // it (some cut the path at NUL, some trim it): the proxy would authorize one path and the
  // upstream read another (docs/security.md, docs/step-up.md). Refused in path and query alike.
  if (CONTROL.test(url)) {
    throw new ProxyError('invalid_request', 'control characters are not allowed in the request target', {
      detail: 'encoded control character (%00-%1F, %7F) in the request target',
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
