import type { IncomingHttpHeaders } from 'node:http';

/** RFC 9110 §7.6.1 connection-specific fields, plus the non-standard ones still seen in the wild. */
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
];

/**
 * Removes hop-by-hop headers, including any named in `Connection` (RFC 9110 §7.6.1). A `Connection`
 * option never removes `Content-Length`: it frames the body, and a body sent on without it would
 * be read by the upstream as the next request (request smuggling).
 */
export function removeHopByHop(headers: IncomingHttpHeaders, keepTransferEncoding = false): void {
  const connection = headers.connection;
  if (typeof connection === 'string') {
    for (const name of connection.split(',')) {
      const n = name.trim().toLowerCase();
      if (n !== '' && n !== 'content-length' && !(keepTransferEncoding && n === 'transfer-encoding')) delete headers[n];
    }
  }
  for (const name of HOP_BY_HOP) {
    // Test first: most are absent, and a delete per absent name is measurable per request.
    if (headers[name] !== undefined && !(keepTransferEncoding && name === 'transfer-encoding')) delete headers[name];
  }
}

export interface ForwardedFor {
  readonly clientAddress: string | undefined;
  readonly host: string | undefined;
  readonly requestId: string;
  readonly accessToken: string;
}

/**
 * Prepares the request headers for the upstream: hop-by-hop removed, the delegated token set, and
 * X-Forwarded-* written from what this proxy saw. Incoming X-Forwarded-* and Forwarded are
 * replaced, not appended: nothing in front of the sidecar is a proxy the upstream should trust.
 */
export function prepareUpstreamHeaders(headers: IncomingHttpHeaders, f: ForwardedFor): void {
  // Transfer-Encoding stays: it is the only framing of a streamed body, and without it the body
  // bytes would reach the upstream unframed (request smuggling). The forwarder re-frames it.
  removeHopByHop(headers, true);
  delete headers.forwarded;
  headers.authorization = `Bearer ${f.accessToken}`;
  if (f.clientAddress !== undefined) headers['x-forwarded-for'] = f.clientAddress;
  else delete headers['x-forwarded-for'];
  headers['x-forwarded-proto'] = 'http';
  if (f.host !== undefined) headers['x-forwarded-host'] = f.host;
  else delete headers['x-forwarded-host'];
  headers['x-request-id'] = f.requestId;
}
