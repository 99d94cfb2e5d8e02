import { Transform } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { FilterTransformOptions } from './json-response-filter.js';

export interface SseFilterOptions extends FilterTransformOptions {
  /**
   * True once every answer worth rewriting went by: the rest of the stream passes without being
   * parsed. Called after each event with a JSON payload.
   */
  readonly done?: () => boolean;
}

const LINE_END = /\r\n|\n|\r/;

/**
 * Rewrites JSON-RPC messages carried in `text/event-stream` events (WHATWG HTML §9.2 "Server-sent
 * events"), event by event: each event goes out as soon as its blank line arrives; only the partial
 * event is held, bounded by `limit`. Events whose data is not a message to rewrite pass byte for
 * byte (ids, retry, comments included); a rewritten event keeps its other fields and gets one
 * `data:` line.
 */
export function createSseResponseFilter(options: SseFilterOptions): Transform {
  const decoder = new StringDecoder('utf8');
  let passthrough = false;
  let rest = '';
  let lines: string[] = [];
  let held = 0;

  const emitEvent = (blank: string): string => {
    const raw = lines.join('') + blank;
    const data: string[] = [];
    const others: string[] = [];
    for (const line of lines) {
      const body = line.replace(LINE_END, '');
      const colon = body.indexOf(':');
      const field = colon === -1 ? body : body.slice(0, colon);
      if (field === 'data') {
        const value = colon === -1 ? '' : body.slice(colon + 1);
        data.push(value.startsWith(' ') ? value.slice(1) : value);
      } else {
        others.push(line);
      }
    }
    lines = [];
    held = 0;
    if (data.length === 0) return raw;
    let rewritten: unknown;
    try {
      rewritten = options.rewrite(JSON.parse(data.join('\n')));
    } catch {
      rewritten = undefined;
    }
    if (options.done?.()) passthrough = true;
    return rewritten === undefined ? raw : `${others.join('')}data: ${JSON.stringify(rewritten)}\n${blank}`;
  };

  const process = (text: string, final: boolean): string => {
    let out = '';
    rest += text;
    for (;;) {
      const m = LINE_END.exec(rest);
      // A CR at the end may be the first half of CRLF: wait for the next chunk.
      if (m === null || (m[0] === '\r' && m.index === rest.length - 1 && !final)) break;
      const line = rest.slice(0, m.index);
      const end = m[0];
      rest = rest.slice(m.index + end.length);
      if (line === '') {
        out += emitEvent(end);
        if (passthrough) {
          out += rest;
          rest = '';
          break;
        }
      } else {
        lines.push(line + end);
        held += line.length + end.length;
      }
    }
    if (!passthrough && held + rest.length > options.limit) {
      passthrough = true;
      options.onGiveUp?.();
      out += lines.join('') + rest;
      lines = [];
      rest = '';
    }
    if (final) out += lines.join('') + rest;
    return out;
  };

  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      const text = decoder.write(chunk);
      const out = passthrough ? text : process(text, false);
      if (out !== '') this.push(out);
      cb();
    },
    flush(cb) {
      const text = decoder.end();
      const out = passthrough ? text : process(text, true);
      if (out !== '') this.push(out);
      cb();
    },
  });
}
