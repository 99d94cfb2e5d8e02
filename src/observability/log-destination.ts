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
  /** Runs the flush a little later (default: an unreferenced timer of FLUSH_DELAY_MS). */
  readonly schedule?: (flush: () => void) => void;
  /** The write call (default fs.writeSync); tests pass a failing one. */
  readonly writeSync?: (fd: number, buffer: Buffer, offset: number) => number;
}

/** How long a line may wait for others to be written with it. */
export const FLUSH_DELAY_MS = 10;
/** Past this many queued bytes (about), the queue is written at once rather than after the delay. */
const FLUSH_BYTES = 64 * 1024;

/**
 * Log lines written together, with one synchronous write(2) at most every FLUSH_DELAY_MS (or at once
 * past FLUSH_BYTES): each request's access line no longer costs a system call of its own, busy or
 * not (at 1,000 req/s that is ten lines per write). pino's asynchronous destination (sonic-boom)
 * costs a thread-pool round trip per write; its synchronous one makes a system call per line, and
 * batching it (`minLength`, `periodicFlush`) costs 3-20 times this per line under load
 * (bench/log-destination-cost.ts).
 * What is queued is written at exit (logger.ts); a process killed outright loses at most the last
 * FLUSH_DELAY_MS of lines. A full pipe blocks the process until the reader catches up, as pino's
 * synchronous default does: a line is never dropped for being slow. A descriptor that cannot be
 * written at all (the reader is gone) drops the batch instead of failing the request that logged it.
 */
export function createBatchedDestination(options: BatchedDestinationOptions): BatchedDestination {
  const schedule = options.schedule ?? ((flush: () => void) => setTimeout(flush, FLUSH_DELAY_MS).unref());
  const write = options.writeSync ?? ((fd: number, buffer: Buffer, offset: number) => writeSync(fd, buffer, offset));
  let parts: string[] = [];
  let queued = 0;
  let scheduled = false;
  let dropped = 0;
  const flushSync = (): void => {
    scheduled = false;
    if (parts.length === 0) return;
    const lines = parts;
    parts = [];
    queued = 0;
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
      queued += line.length;
      if (queued >= FLUSH_BYTES) flushSync();
      else if (!scheduled) {
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
