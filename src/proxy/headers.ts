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
export function removeHopByHop(headers: IncomingHttpHeaders): void {
  const connection = headers.connection;
  if (typeof connection === 'string') {
    for (const name of connection.split(',')) {
      const n = name.trim().toLowerCase();
      if (n !== '' && n !== 'content-length') delete headers[n];
    }
  }
  for (const name of HOP_BY_HOP) {
    // Test first: most are absent, and a delete per absent name is measurable per request.
    if (headers[name] !== undefined) delete headers[name];
  }
}

/** Response fields never passed back to the agent: hop-by-hop (RFC 9110 §7.6.1); Node frames the body itself. */
const HOP_BY_HOP_SET = new Set(HOP_BY_HOP);

/**
 * An upstream response's headers for the agent, as a flat [name, value, ...] list (what
 * `writeHead` takes without copying them into the response's own header store): hop-by-hop
 * fields and any named in `Connection` dropped, except `Content-Length` (see removeHopByHop),
 * which goes only when the body is rewritten (`dropLength`). The request's id is added when
 * the upstream sent none. Repeated fields (`set-cookie`) stay separate.
 */
export function responseHeaders(
  headers: IncomingHttpHeaders,
  requestId: string | undefined,
  dropLength: boolean,
): string[] {
  const connection = headers.connection;
  const listed =
    typeof connection === 'string' && connection !== 'close' && connection !== 'keep-alive'
      ? connectionTokens(connection)
      : undefined;
  listed?.delete('content-length');
  const out: string[] = [];
  for (const name in headers) {
    if (HOP_BY_HOP_SET.has(name) || listed?.has(name) || (dropLength && name === 'content-length')) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  if (requestId !== undefined && headers['x-request-id'] === undefined) out.push('x-request-id', requestId);
  return out;
}

export interface ForwardedFor {
  readonly clientAddress: string | undefined;
  readonly host: string | undefined;
  readonly requestId: string;
  readonly accessToken: string;
}

/**
 * Request headers never copied to the upstream: hop-by-hop (RFC 9110 §7.6.1), framing (the
 * forwarder frames the body it sends: RFC 9112 §6), Host (the upstream's own), `Expect` (the
 * client's 100-continue was answered by this server), and the fields rewritten below.
 */
const NOT_COPIED = new Set([
  ...HOP_BY_HOP,
  'content-length',
  'host',
  'expect',
  'authorization',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-request-id',
]);

/**
 * The headers for one upstream attempt, as a flat [name, value, ...] list built fresh from the
 * incoming request (which is never changed, so a retry just calls this again): hop-by-hop and any
 * field named in `Connection` dropped, the delegated token set, and X-Forwarded-* written from what
 * this proxy saw. Incoming X-Forwarded-* and Forwarded are replaced, not appended: nothing in front
 * of the sidecar is a proxy the upstream should trust. Credential headers were removed from the
 * request by the subject step (docs/security.md).
 */
export function buildUpstreamHeaders(headers: IncomingHttpHeaders, f: ForwardedFor): string[] {
  const connection = headers.connection;
  const listed =
    typeof connection === 'string' && connection !== 'close' && connection !== 'keep-alive'
      ? connectionTokens(connection)
      : undefined;
  const out: string[] = [];
  for (const name in headers) {
    if (NOT_COPIED.has(name) || listed?.has(name)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  out.push('authorization', `Bearer ${f.accessToken}`);
  if (f.clientAddress !== undefined) out.push('x-forwarded-for', f.clientAddress);
  out.push('x-forwarded-proto', 'http');
  if (f.host !== undefined) out.push('x-forwarded-host', f.host);
  out.push('x-request-id', f.requestId);
  return out;
}

function connectionTokens(value: string): Set<string> {
  const names = new Set<string>();
  for (const name of value.split(',')) {
    const n = name.trim().toLowerCase();
    if (n !== '') names.add(n);
  }
  return names;
}
