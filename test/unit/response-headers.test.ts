import { describe, expect, it } from 'vitest';
import { responseHeaders } from '../../src/proxy/headers.js';

const pairs = (flat: string[]) => Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i], flat[2 * i + 1]]);

describe('responseHeaders (upstream response -> agent)', () => {
  it('drops hop-by-hop fields and those named in Connection, keeps repeated set-cookie fields apart', () => {
    const out = responseHeaders(
      {
        connection: 'keep-alive, x-secret-hop, Content-Length',
        'keep-alive': 'timeout=5',
        'transfer-encoding': 'chunked',
        'proxy-authenticate': 'Basic',
        trailer: 'x-t',
        upgrade: 'h2c',
        'x-secret-hop': 'internal',
        'content-type': 'text/plain',
        'content-length': '5',
        'set-cookie': ['a=1', 'b=2'],
      },
      'req-1',
      false,
    );
    expect(pairs(out)).toEqual([
      ['content-type', 'text/plain'],
      // A Connection option never removes Content-Length: it frames the body (smuggling).
      ['content-length', '5'],
      ['set-cookie', 'a=1'],
      ['set-cookie', 'b=2'],
      ['x-request-id', 'req-1'],
    ]);
  });

  it("drops Content-Length when the body is rewritten, and keeps the upstream's own x-request-id", () => {
    const out = responseHeaders({ 'content-length': '99', 'x-request-id': 'upstream-id', etag: '"x"' }, 'req-1', true);
    expect(pairs(out)).toEqual([
      ['x-request-id', 'upstream-id'],
      ['etag', '"x"'],
    ]);
  });
});
