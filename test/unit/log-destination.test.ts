import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createBatchedDestination } from '../../src/observability/log-destination.js';
import { createLogger } from '../../src/observability/logger.js';

/** A scheduler the test runs by hand: what setImmediate would run after the current turn. */
function manualSchedule() {
  const queue: Array<() => void> = [];
  return {
    schedule: (f: () => void) => {
      queue.push(f);
    },
    run: () => {
      for (const f of queue.splice(0)) f();
    },
    get pending() {
      return queue.length;
    },
  };
}

describe('batched log destination', () => {
  it('writes the lines queued until the flush with one write, in order, and nothing before', () => {
    const turn = manualSchedule();
    const writes: string[] = [];
    const dest = createBatchedDestination({
      fd: 99,
      schedule: turn.schedule,
      writeSync: (_fd, buffer, offset) => {
        writes.push(buffer.subarray(offset).toString('utf8'));
        return buffer.length - offset;
      },
    });
    dest.write('a\n');
    dest.write('bé\n');
    dest.write('c\n');
    expect(writes).toEqual([]);
    expect(turn.pending).toBe(1);
    turn.run();
    expect(writes).toEqual(['a\nbé\nc\n']);
    dest.write('d\n');
    turn.run();
    expect(writes).toEqual(['a\nbé\nc\n', 'd\n']);
  });

  it('writes at once, without waiting for the delay, once about 64 KiB are queued', () => {
    const turn = manualSchedule();
    const sizes: number[] = [];
    const dest = createBatchedDestination({
      fd: 99,
      schedule: turn.schedule,
      writeSync: (_fd, buffer, offset) => {
        sizes.push(buffer.length - offset);
        return buffer.length - offset;
      },
    });
    const line = `${'x'.repeat(1023)}\n`;
    for (let i = 0; i < 63; i++) dest.write(line);
    expect(sizes).toEqual([]);
    dest.write(line);
    expect(sizes).toEqual([64 * 1024]);
    dest.write('tail\n');
    turn.run();
    expect(sizes).toEqual([64 * 1024, 5]);
  });

  it('finishes partial writes and waits out EAGAIN, losing no byte', () => {
    const turn = manualSchedule();
    const out: Buffer[] = [];
    let call = 0;
    const dest = createBatchedDestination({
      fd: 99,
      schedule: turn.schedule,
      writeSync: (_fd, buffer, offset) => {
        call++;
        if (call === 2) throw Object.assign(new Error('try again'), { code: 'EAGAIN' });
        const n = Math.min(3, buffer.length - offset);
        out.push(buffer.subarray(offset, offset + n));
        return n;
      },
    });
    dest.write('0123456789\n');
    turn.run();
    expect(Buffer.concat(out).toString()).toBe('0123456789\n');
    expect(dest.dropped).toBe(0);
  });

  it('drops the batch, without throwing, when the descriptor cannot be written (EPIPE)', () => {
    const turn = manualSchedule();
    const dest = createBatchedDestination({
      fd: 99,
      schedule: turn.schedule,
      writeSync: () => {
        throw Object.assign(new Error('broken pipe'), { code: 'EPIPE' });
      },
    });
    dest.write('a\n');
    dest.write('b\n');
    expect(() => turn.run()).not.toThrow();
    expect(dest.dropped).toBe(2);
    expect(() => dest.flushSync()).not.toThrow();
  });

  it('carries pino lines to a real file; flushSync writes what is queued at once', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'dp-log-')), 'out.log');
    const fd = openSync(file, 'w');
    const turn = manualSchedule();
    const dest = createBatchedDestination({ fd, schedule: turn.schedule });
    const logger = createLogger({ level: 'info', destination: dest });
    logger.info({ n: 1 }, 'first');
    logger.info({ n: 2 }, 'second');
    expect(readFileSync(file, 'utf8')).toBe('');
    dest.flushSync();
    closeSync(fd);
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l.msg, l.n])).toEqual([
      ['first', 1],
      ['second', 2],
    ]);
  });
});
