import { writeSync } from 'node:fs';

/** pino's DestinationStream, plus a synchronous flush for exit. */
export interface BatchedDestination {
  write(line: string): void;
  /** Writes whatever is queued now (process exit, shutdown). */
  flushSync(): void;
  /** Lines dropped because the descriptor could not be written (e.g. EPIPE: nobody reads stdout). */
  readonly dropped: number;
}

export interface BatchedDestinationOptions {
  readonly fd: number;
  /** Runs the flush after the current turn of the event loop (default setImmediate). */
  readonly schedule?: (flush: () => void) => void;
  /** The write call (default fs.writeSync); tests pass a failing one. */
  readonly writeSync?: (fd: number, buffer: Buffer, offset: number) => number;
}

/**
 * Log lines written together, once per turn of the event loop, with one synchronous write(2): a
 * busy proxy writes many lines per turn (each request's access line among them) in one system call,
 * and an idle one writes each line at once. pino's asynchronous destination (sonic-boom) costs a
 * thread-pool round trip per write and measures its whole pending buffer again on each line; its
 * synchronous one makes a system call per line (BENCHMARKS.md "Where the time goes").
 * A full pipe blocks the process until the reader catches up, as pino's synchronous default does:
 * a log line is never dropped for being slow. A descriptor that cannot be written at all (the reader
 * is gone) drops the batch instead of failing the request that logged it.
 */
export function createBatchedDestination(options: BatchedDestinationOptions): BatchedDestination {
  const schedule = options.schedule ?? setImmediate;
  const write = options.writeSync ?? ((fd: number, buffer: Buffer, offset: number) => writeSync(fd, buffer, offset));
  let parts: string[] = [];
  let scheduled = false;
  let dropped = 0;
  const flushSync = (): void => {
    scheduled = false;
    if (parts.length === 0) return;
    const lines = parts;
    parts = [];
    const buffer = Buffer.from(lines.length === 1 ? (lines[0] as string) : lines.join(''), 'utf8');
    let offset = 0;
    while (offset < buffer.length) {
      try {
        offset += write(options.fd, buffer, offset);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') {
          // A non-blocking pipe that is full: wait for the reader, as a synchronous write would.
          Atomics.wait(SLEEP, 0, 0, 1);
          continue;
        }
        dropped += lines.length;
        return;
      }
    }
  };
  return {
    write(line) {
      parts.push(line);
      if (!scheduled) {
        scheduled = true;
        schedule(flushSync);
      }
    },
    flushSync,
    get dropped() {
      return dropped;
    },
  };
}

/** A cell to Atomics.wait on: a sleep of a few milliseconds without a busy loop. */
const SLEEP = new Int32Array(new SharedArrayBuffer(4));
