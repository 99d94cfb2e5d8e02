import { once } from 'node:events';
import WebSocket from 'ws';
import type { useClosers } from './closers.js';

/** An open WebSocket to `path` on the proxy at `proxyUrl`, carrying `user`'s token; terminated with `closers`. */
export async function openProxyWs(
  closers: ReturnType<typeof useClosers>,
  proxyUrl: string,
  path: string,
  user: string,
): Promise<WebSocket> {
  const ws = new WebSocket(`${proxyUrl.replace(/^http/, 'ws')}${path}`, {
    headers: { authorization: `Bearer ${user}` },
  });
  closers.push(() => ws.terminate());
  await once(ws, 'open');
  return ws;
}

/** Sends `text` and resolves with the next message (an echo upstream sends it back). */
export async function echo(ws: WebSocket, text: string): Promise<string> {
  ws.send(text);
  const [data] = (await once(ws, 'message')) as [Buffer];
  return data.toString();
}
