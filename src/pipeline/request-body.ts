import type { IncomingMessage } from 'node:http';
import { ProxyError } from '../errors.js';

export interface ReplayableBody {
  /** True when the request could be sent a second time (no body, or `body` holds all of it). */
  readonly replayable: boolean;
  readonly body: Buffer | undefined;
}

const NONE: ReplayableBody = Object.freeze({ replayable: true, body: undefined });
const STREAMED: ReplayableBody = Object.freeze({ replayable: false, body: undefined });

export function hasBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}

/**
 * Reads the whole body, refusing more than `limit` bytes with 413 `payload_too_large` (RFC 9110
 * §15.5.14); a body the client stops sending is a 400 (the client went away, not the proxy failing).
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.resume();
        reject(
          new ProxyError('payload_too_large', `the request body is larger than ${limit} bytes`, {
            // The rest of the body is not read: the connection cannot be reused.
            headers: { connection: 'close' },
          }),
        );
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks, size)));
    req.once('error', (err) => reject(new ProxyError('invalid_request', 'the request body could not be read', { detail: err.message, cause: err })));
  });
}

/**
 * Keeps a small request body in memory so the request can be replayed once (upstream 401 on a
 * cached token, step-up challenge). Larger or chunked bodies stream and are never replayed.
 */
export async function readReplayableBody(req: IncomingMessage, limit: number): Promise<ReplayableBody> {
  if (!hasBody(req)) return NONE;
  const cl = req.headers['content-length'];
  if (req.headers['transfer-encoding'] !== undefined || cl === undefined || Number(cl) > limit) return STREAMED;
  return { replayable: true, body: await readBody(req, limit) };
}
