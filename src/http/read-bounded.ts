import type { Dispatcher } from 'undici';

/**
 * Reads an undici response body as UTF-8, refusing (and destroying the stream) past `limit` bytes:
 * every answer from the authorization server or an approval webhook is bounded (docs/design.md "Code rules").
 */
export async function readBoundedText(
  body: Dispatcher.ResponseData['body'],
  limit: number,
  what: string,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      body.destroy();
      throw new Error(`${what} larger than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}
