import { type Logger, pino } from 'pino';

/** The fields of one access line (docs/operations.md "Logs"), in the order they are written. */
export interface AccessFields {
  readonly reqId: string;
  readonly route: string | undefined;
  readonly method: string | undefined;
  readonly path: string | undefined;
  readonly status: number;
  readonly upstreamStatus: number | undefined;
  readonly durationMs: number;
  readonly cache: string | undefined;
  readonly sub: string | undefined;
  readonly aborted: boolean;
  /** Step-added fields (e.g. the MCP method), written after the fixed ones. */
  readonly extra: Readonly<Record<string, unknown>> | undefined;
}

export interface AccessLog {
  write(fields: AccessFields): void;
}

/**
 * The one access line per request, serialised by hand into the logger's own stream: the same line
 * pino writes for `logger.info({ ...fields, access: true }, 'request')` (level label, ISO time, the
 * logger's bindings, the fields, `msg`), without pino's generic per-key serialisation, which is
 * most of a line's cost (bench/log-cost.ts). Its fields are a fixed set, none of them a
 * credential, so there is nothing for redaction to find (docs/operations.md "Logs"). The logger's level is
 * read per line, so a reload that changes it takes effect at once.
 */
export function createAccessLog(logger: Logger): AccessLog {
  const clock = new IsoClock();
  // The logger's bindings (`"service":...`), as pino keeps them: a leading comma, JSON-escaped. The
  // format of pino.symbols' values is pino's own, not its API: package.json pins pino's minor version
  // (~), and test/unit/access-line.test.ts compares this line with pino's key for key.
  const bindings = (logger as unknown as Record<symbol, string>)[pino.symbols.chindingsSym] ?? '';
  const stream = (logger as unknown as Record<symbol, { write(line: string): void }>)[pino.symbols.streamSym];
  return {
    write(f) {
      if (stream === undefined || !logger.isLevelEnabled('info')) return;
      let line = `{"level":"info","time":"${clock.now()}"${bindings},"reqId":${JSON.stringify(f.reqId)}`;
      if (f.route !== undefined) line += `,"route":${JSON.stringify(f.route)}`;
      line += ',"access":true';
      if (f.method !== undefined) line += `,"method":${JSON.stringify(f.method)}`;
      if (f.path !== undefined) line += `,"path":${JSON.stringify(f.path)}`;
      line += `,"status":${f.status}`;
      if (f.upstreamStatus !== undefined) line += `,"upstreamStatus":${f.upstreamStatus}`;
      line += `,"durationMs":${f.durationMs}`;
      if (f.cache !== undefined) line += `,"cache":${JSON.stringify(f.cache)}`;
      if (f.sub !== undefined) line += `,"sub":${JSON.stringify(f.sub)}`;
      if (f.aborted) line += ',"aborted":true';
      if (f.extra !== undefined) {
        for (const key in f.extra) {
          const value = JSON.stringify(f.extra[key]);
          // As JSON.stringify of the whole object would: undefined (and functions) leave no key.
          if (value !== undefined) line += `,${JSON.stringify(key)}:${value}`;
        }
      }
      line += ',"msg":"request"}\n';
      stream.write(line);
    },
  };
}

/** `new Date().toISOString()`, made once per millisecond: a busy proxy writes many lines in one. */
class IsoClock {
  #ms = -1;
  #text = '';

  now(): string {
    const ms = Date.now();
    if (ms !== this.#ms) {
      this.#ms = ms;
      this.#text = new Date(ms).toISOString();
    }
    return this.#text;
  }
}
