import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { useClosers } from '../helpers/closers.js';
import { startInHandlerPipeline } from '../helpers/in-handler-pipeline.js';
import { startUpstream } from '../helpers/start-upstream.js';

/**
 * The warm path (docs/design.md "Request pipeline"): on a warm cache the handler
 * reaches the upstream dispatch within its own call, with nothing awaited before it; a miss waits
 * for the one exchange.
 */
describe('warm path', () => {
  const closers = useClosers();

  it('dispatches a cache hit synchronously, a miss after the exchange', async () => {
    const upstream = await startUpstream();
    closers.push(() => upstream.close());
    const p = await startInHandlerPipeline(
      [{ name: 'r', match: { pathPrefix: '/r' }, upstream: upstream.url, scopes: ['a'] }],
      closers,
    );
    const url = `${p.url}/r/a`;
    for (let i = 0; i < 3; i++) {
      const res = await request(url, { headers: { authorization: 'Bearer user-token-1' } });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
      expect(upstream.requests.at(-1)?.headers.authorization).toBe('Bearer delegated-1');
    }
    expect(p.exchanged).toHaveLength(1);
    // The first request waited for its exchange; the two hits were dispatched inside the handler call.
    expect(p.dispatchedInHandler).toEqual([false, true, true]);
  });
});
