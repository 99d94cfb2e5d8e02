import { randomBytes } from 'node:crypto';

/**
 * Follows RFC 6455 §5.2 frame headers in a relayed byte stream, without buffering or parsing
 * payloads, so the proxy knows when it may slip in a close frame of its own (control frames may
 * sit between the fragments of a message, §5.4, but never inside a frame).
 */
export class FrameBoundary {
  readonly #header = Buffer.alloc(14);
  #headerLength = 0;
  #remaining = 0;
  /** A close frame (opcode 0x8, §5.5.1) went through: this side started or answered the closing handshake. */
  closeSeen = false;

  get atBoundary(): boolean {
    return this.#headerLength === 0 && this.#remaining === 0;
  }

  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.#remaining > 0) {
        const n = Math.min(this.#remaining, chunk.length - i);
        this.#remaining -= n;
        i += n;
        continue;
      }
      this.#header[this.#headerLength++] = chunk[i++] as number;
      if (this.#headerLength < 2) continue;
      const second = this.#header[1] as number;
      const len7 = second & 0x7f;
      const size = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (second & 0x80 ? 4 : 0);
      if (this.#headerLength < size) continue;
      this.#remaining =
        len7 === 126 ? this.#header.readUInt16BE(2) : len7 === 127 ? Number(this.#header.readBigUInt64BE(2)) : len7;
      this.#headerLength = 0;
      if (((this.#header[0] as number) & 0x0f) === 0x8) this.closeSeen = true;
    }
  }
}

/** A close frame (RFC 6455 §5.5.1) with a status code (§7.4) and a short reason. */
export function closeFrame(code: number, reason: string, masked: boolean): Buffer {
  const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2);
  if (!masked) return Buffer.concat([Buffer.from([0x88, payload.length]), payload]);
  // §5.3: every frame from a client to a server is masked; the proxy is the client on the upstream leg.
  const mask = randomBytes(4);
  for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (mask[i % 4] as number);
  return Buffer.concat([Buffer.from([0x88, 0x80 | payload.length]), mask, payload]);
}
