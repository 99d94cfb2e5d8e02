import type { ServerResponse } from 'node:http';

/**
 * Answers with `body` as JSON, never cached (`Cache-Control: no-store`: every JSON answer of the
 * proxy is about one request or one moment). `headers` are added after the defaults and may
 * replace them.
 */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string | number>> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}
