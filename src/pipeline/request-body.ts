import type { IncomingMessage } from 'node:http';
import { ProxyError } from '../errors.js';

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
            // The rest of the body is discarded as it arrives (resume), and the connection closes
            // after the 413 rather than waiting for a body of any size to end.
            headers: { connection: 'close' },
          }),
        );
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    // One chunk (a small body usually is) is its own buffer: the parser hands each chunk over as a copy.
    req.once('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)));
    req.once('error', (err) =>
      reject(
        new ProxyError('invalid_request', 'the request body could not be read', { detail: err.message, cause: err }),
      ),
    );
  });
}

/**
 * Whether a request body is kept in memory so the request can be replayed once (upstream 401 on a
 * cached token, step-up challenge): a sized body up to `limit` bytes. Larger or chunked bodies
 * stream and are never replayed. Decided from the headers, without waiting.
 */
export function isReplayable(req: IncomingMessage, limit: number): boolean {
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] === undefined && cl !== undefined && Number(cl) <= limit;
}
