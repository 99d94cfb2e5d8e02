import { Writable } from 'node:stream';
import type { DestinationStream } from 'pino';

/** Collects every JSON log line the proxy writes, for assertions (pino test/helper.js style). */
export interface LogSink extends DestinationStream {
  readonly raw: string[];
  lines(): Array<Record<string, unknown>>;
  /** The whole log as one string, for "no token anywhere" checks. */
  text(): string;
}

export function createLogSink(): LogSink {
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      raw.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== ''),
      );
      cb();
    },
  });
  return Object.assign(stream, {
    raw,
    lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>),
    text: () => raw.join('\n'),
  }) as unknown as LogSink;
}
