import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { closeFrame, FrameBoundary } from '../../src/proxy/websocket-frames.js';

/** An RFC 6455 §5.2 frame: 7-, 16- or 64-bit length, masked or not (payload bytes are not looked at). */
function frame(opcode: number, length: number, masked: boolean): Buffer {
  const ext = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (masked ? 4 : 0));
  head[0] = 0x80 | opcode;
  head[1] = (masked ? 0x80 : 0) | (ext === 0 ? length : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(length, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(length), 2);
  return Buffer.concat([head, Buffer.alloc(length, 0x81)]);
}

describe('FrameBoundary', () => {
  it('is at a boundary exactly at the end of each frame, however the stream is cut into chunks', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            length: fc.oneof(fc.integer({ min: 0, max: 130 }), fc.integer({ min: 65_530, max: 65_545 })),
            masked: fc.boolean(),
          }),
          { minLength: 1, maxLength: 6 },
        ),
        fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 20 }),
        (frames, cuts) => {
          const bytes = frames.map((f) => frame(0x2, f.length, f.masked));
          const ends = new Set<number>();
          let total = 0;
          for (const b of bytes) {
            total += b.length;
            ends.add(total);
          }
          const stream = Buffer.concat(bytes);
          const tracker = new FrameBoundary();
          // Feed byte ranges, checking the boundary at every cut point and at the end.
          let at = 0;
          for (const cut of [...cuts, stream.length]) {
            const next = Math.min(stream.length, at + cut);
            tracker.push(stream.subarray(at, next));
            at = next;
            expect(tracker.atBoundary).toBe(ends.has(at));
            if (at === stream.length) break;
          }
          expect(tracker.atBoundary).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('sees a close frame (opcode 0x8), also after a fragmented message and a 64-bit length', () => {
    const tracker = new FrameBoundary();
    tracker.push(Buffer.concat([frame(0x1, 3, true), frame(0x2, 70_000, false)]));
    expect(tracker.closeSeen).toBe(false);
    const close = closeFrame(1000, 'bye', true);
    tracker.push(close.subarray(0, 1));
    expect(tracker.atBoundary).toBe(false);
    tracker.push(close.subarray(1));
    expect(tracker.closeSeen).toBe(true);
    expect(tracker.atBoundary).toBe(true);
  });
});

describe('closeFrame', () => {
  it('writes code and reason unmasked towards the agent (RFC 6455 §5.1)', () => {
    const f = closeFrame(1008, 'connection lifetime exceeded', false);
    expect(f[0]).toBe(0x88);
    expect(f[1]).toBe(2 + 28);
    expect(f.readUInt16BE(2)).toBe(1008);
    expect(f.subarray(4).toString()).toBe('connection lifetime exceeded');
  });

  it('masks the payload towards the upstream (RFC 6455 §5.3)', () => {
    const f = closeFrame(1001, 'proxy shutting down', true);
    expect(f[0]).toBe(0x88);
    expect(f[1]).toBe(0x80 | (2 + 19));
    const mask = f.subarray(2, 6);
    const payload = Buffer.from(f.subarray(6).map((b, i) => b ^ (mask[i % 4] as number)));
    expect(payload.readUInt16BE(0)).toBe(1001);
    expect(payload.subarray(2).toString()).toBe('proxy shutting down');
  });
});
