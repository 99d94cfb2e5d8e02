import { createServer, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { decodeJwt, type JWTPayload } from 'jose';
import { closeServer, listen, urlOf } from '../server/listen.js';

/** One request as the echo upstream received it, credentials included (for tests). */
export interface EchoRecord {
  method: string;
  /** The request target as received: path and query. */
  path: string;
  headers: IncomingHttpHeaders;
  /** UTF-8 body, at most {@link MAX_BODY_BYTES}. */
  body: string;
  bodyTruncated: boolean;
}

/** The JSON answer of the echo upstream. */
export interface EchoResponse {
  method: string;
  path: string;
  /** Received headers; credential headers are replaced by "[redacted]". */
  headers: IncomingHttpHeaders;
  /** The Authorization header's scheme and, when its credential is a JWT, the decoded payload (unverified). */
  delegatedToken: { scheme: string; claims: JWTPayload | null } | null;
  body: string;
}

/** A running echo upstream. */
export interface EchoUpstream {
  url: string;
  /** Every request received, in order. */
  requests: EchoRecord[];
  close(): Promise<void>;
}

export const MAX_BODY_BYTES = 64 * 1024;
const REDACTED = '[redacted]';
// A raw token must never be echoed: the demo's response is shown to whoever calls the proxy.
const CREDENTIAL_HEADERS = ['authorization', 'proxy-authorization'];

/** Start a demo upstream that answers every request with what it received (dev and tests only). */
export async function startEchoUpstream(options: { host?: string; port?: number } = {}): Promise<EchoUpstream> {
  const requests: EchoRecord[] = [];
  const server = createServer((req, res) => {
    readBody(req).then(
      ({ body, truncated }) => {
        const record: EchoRecord = {
          method: req.method ?? 'GET',
          path: req.url ?? '/',
          headers: req.headers,
          body,
          bodyTruncated: truncated,
        };
        requests.push(record);
        const payload = JSON.stringify(toResponse(record));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
        res.end(payload);
      },
      () => res.destroy(),
    );
  });
  const url = urlOf(await listen(server, options.host ?? '127.0.0.1', options.port ?? 0));
  return { url, requests, close: () => closeServer(server) };
}

function toResponse(record: EchoRecord): EchoResponse {
  const headers: IncomingHttpHeaders = { ...record.headers };
  for (const name of CREDENTIAL_HEADERS) {
    if (headers[name] !== undefined) headers[name] = REDACTED;
  }
  return {
    method: record.method,
    path: record.path,
    headers,
    delegatedToken: describeAuthorization(record.headers.authorization),
    body: record.body,
  };
}

function describeAuthorization(header: string | undefined): EchoResponse['delegatedToken'] {
  if (header === undefined) return null;
  const [scheme = '', credential = ''] = header.trim().split(/\s+/, 2);
  return { scheme, claims: decodeOrNull(credential) };
}

function decodeOrNull(credential: string): JWTPayload | null {
  try {
    return decodeJwt(credential);
  } catch {
    return null;
  }
}

/** Keeps the first MAX_BODY_BYTES and drains the rest so the client still gets an answer. */
async function readBody(req: IncomingMessage): Promise<{ body: string; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    const room = MAX_BODY_BYTES - size;
    if (chunk.length > room) truncated = true;
    if (room > 0) {
      const kept = chunk.subarray(0, room);
      chunks.push(kept);
      size += kept.length;
    }
  }
  return { body: Buffer.concat(chunks).toString('utf8'), truncated };
}
