import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

/**
 * Status line and description for a request Node's parser refused (the `clientError` event): a
 * request whose headers did not arrive within `clientTimeouts.headersMs` gets 408 (RFC 9110
 * §15.5.9), oversized headers 431 (RFC 6585 §5), anything else 400.
 */
export function clientErrorAnswer(code: string | undefined): { status: string; description: string } {
  switch (code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'HPE_HEADER_TIMEOUT':
      return { status: '408 Request Timeout', description: 'request headers not received in time' };
    case 'HPE_HEADER_OVERFLOW':
      return { status: '431 Request Header Fields Too Large', description: 'malformed HTTP request' };
    default:
      return { status: '400 Bad Request', description: 'malformed HTTP request' };
  }
}

/** True when the request carries more than one Host header field. */
export function hasDuplicateHost(req: IncomingMessage): boolean {
  let seen = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]?.length === 4 && raw[i]?.toLowerCase() === 'host' && ++seen > 1) return true;
  }
  return false;
}

/**
 * RFC 9112 §3.2: a server MUST answer 400 to a request with more than one Host header field. Node
 * keeps the first and drops the others, so the check reads the raw header list before routing.
 */
export function refuseDuplicateHost(next: RequestListener): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (!hasDuplicateHost(req)) {
      next(req, res);
      return;
    }
    const body = JSON.stringify({ error: 'invalid_request', error_description: 'more than one Host header' });
    res.shouldKeepAlive = false;
    res.writeHead(400, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
    });
    res.end(body);
  };
}
