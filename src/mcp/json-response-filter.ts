import { Transform } from 'node:stream';

export interface FilterTransformOptions {
  /** Returns the rewritten value, or undefined to send the original bytes. */
  readonly rewrite: (value: unknown) => unknown;
  /** Bytes held at most before giving up and passing the rest through unchanged. */
  readonly limit: number;
  /** Called once when the limit is hit (logging). */
  readonly onGiveUp?: () => void;
}

/**
 * An `application/json` answer is one JSON-RPC message or batch: it is held (bounded) until the
 * upstream ends it, rewritten, and sent. Past `limit` it passes through unfiltered: filtering only
 * hides tools, the calls themselves are still enforced.
 */
export function createJsonResponseFilter(options: FilterTransformOptions): Transform {
  let chunks: Buffer[] | undefined = [];
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (chunks === undefined) {
        cb(null, chunk);
        return;
      }
      size += chunk.length;
      chunks.push(chunk);
      if (size > options.limit) {
        const held = Buffer.concat(chunks, size);
        chunks = undefined;
        options.onGiveUp?.();
        cb(null, held);
        return;
      }
      cb();
    },
    flush(cb) {
      if (chunks === undefined) {
        cb();
        return;
      }
      const body = Buffer.concat(chunks, size);
      chunks = undefined;
      let rewritten: unknown;
      try {
        rewritten = options.rewrite(JSON.parse(body.toString('utf8')));
      } catch {
        rewritten = undefined;
      }
      cb(null, rewritten === undefined ? body : Buffer.from(JSON.stringify(rewritten)));
    },
  });
}
