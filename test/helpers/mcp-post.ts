import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'undici';

/**
 * One raw MCP POST as an agent sends it: `user`'s token, a JSON body (a string or Buffer goes as is,
 * anything else as JSON), JSON or SSE accepted; `headers` are added over those. Resolves with the
 * whole answer.
 */
export async function postMcp(
  url: string,
  user: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; text: string }> {
  const res = await request(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${user}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}
