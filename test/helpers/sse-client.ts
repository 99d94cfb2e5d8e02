import { request } from 'node:http';

export interface SseClient {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  /** Text received so far. */
  text(): string;
  /**
   * How the response ended: `end` (a clean end: the chunked body's last chunk arrived) or `error`
   * (reset or cut).
   */
  readonly ended: Promise<'end' | 'error'>;
  /** Whether it has ended yet. */
  readonly done: boolean;
  /** Resolves once the text received contains `needle`. */
  received(needle: string, timeoutMs?: number): Promise<void>;
  close(): void;
}

/** Opens a streaming request (GET, or POST with a body) and reads its response as it arrives. */
export function openSse(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      let text = '';
      let done = false;
      const waiters = new Set<() => void>();
      const ended = new Promise<'end' | 'error'>((settle) => {
        res.on('end', () => settle('end'));
        res.on('error', () => settle('error'));
        res.on('aborted', () => settle('error'));
        res.on('close', () => settle(res.complete ? 'end' : 'error'));
      }).then((how) => {
        done = true;
        for (const w of waiters) w();
        return how;
      });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        for (const w of waiters) w();
      });
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        text: () => text,
        ended,
        get done() {
          return done;
        },
        received(needle, timeoutMs = 5_000) {
          return new Promise<void>((ok, fail) => {
            const check = () => {
              if (text.includes(needle)) {
                waiters.delete(check);
                clearTimeout(timer);
                ok();
              } else if (done) {
                waiters.delete(check);
                clearTimeout(timer);
                fail(new Error(`stream ended before ${JSON.stringify(needle)}; got ${JSON.stringify(text)}`));
              }
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              fail(new Error(`no ${JSON.stringify(needle)} within ${timeoutMs} ms; got ${JSON.stringify(text)}`));
            }, timeoutMs);
            waiters.add(check);
            check();
          });
        },
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    if (options.body !== undefined) req.end(options.body);
    else req.end();
  });
}
