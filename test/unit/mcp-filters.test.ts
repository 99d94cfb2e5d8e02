import type { Transform } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createJsonResponseFilter } from '../../src/mcp/json-response-filter.js';
import { createSseResponseFilter } from '../../src/mcp/sse-response-filter.js';
import { filterToolsListMessage } from '../../src/mcp/tools-list-filter.js';

const ids = new Set<string | number>([1]);
const mayList = (name: string) => name !== 'delete_file';
const rewrite = (v: unknown) => filterToolsListMessage(v, ids, mayList);

const toolsResult = (id: number | string) => ({
  jsonrpc: '2.0',
  id,
  result: {
    tools: [{ name: 'read_file', inputSchema: {} }, { name: 'delete_file', inputSchema: {} }, { title: 'no name' }],
    nextCursor: 'c',
  },
});

/** Writes `chunks` through the transform and collects the output as text. */
async function run(transform: Transform, chunks: Array<string | Buffer>): Promise<string> {
  const out: Buffer[] = [];
  transform.on('data', (c: Buffer) => out.push(Buffer.from(c)));
  const done = new Promise<void>((resolve, reject) => {
    transform.on('end', resolve);
    transform.on('error', reject);
  });
  for (const c of chunks) transform.write(typeof c === 'string' ? Buffer.from(c) : c);
  transform.end();
  await done;
  return Buffer.concat(out).toString('utf8');
}

function everySplit(text: string): string[][] {
  const bytes = Buffer.from(text);
  const splits: string[][] = [];
  for (let i = 1; i < bytes.length; i++)
    splits.push([bytes.subarray(0, i).toString('latin1'), bytes.subarray(i).toString('latin1')]);
  return splits;
}

describe('filterToolsListMessage', () => {
  it('keeps only the tools the user may call and the rest of the result', () => {
    expect(rewrite(toolsResult(1))).toEqual({
      jsonrpc: '2.0',
      id: 1,
      result: { tools: [{ name: 'read_file', inputSchema: {} }], nextCursor: 'c' },
    });
  });

  it('touches only answers to the tools/list ids', () => {
    expect(rewrite(toolsResult(2))).toBeUndefined();
    expect(rewrite({ jsonrpc: '2.0', id: 1, method: 'x', params: { tools: [] } })).toBeUndefined();
    expect(rewrite({ jsonrpc: '2.0', id: 1, error: { code: 1, message: 'x' } })).toBeUndefined();
  });

  it('filters inside a batch answer', () => {
    const out = rewrite([toolsResult(2), toolsResult(1)]) as Array<{ result: { tools: unknown[] } }>;
    expect(out[0]!.result.tools).toHaveLength(3);
    expect(out[1]!.result.tools).toHaveLength(1);
  });

  it('reports no change when every tool may be called', () => {
    expect(
      filterToolsListMessage({ jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'a' }] } }, ids, () => true),
    ).toBeUndefined();
  });
});

describe('JSON response filter', () => {
  it('rewrites a tools/list answer that arrives in pieces', async () => {
    const text = JSON.stringify(toolsResult(1));
    const out = await run(createJsonResponseFilter({ rewrite, limit: 1 << 20 }), [text.slice(0, 10), text.slice(10)]);
    expect(JSON.parse(out).result.tools).toEqual([{ name: 'read_file', inputSchema: {} }]);
  });

  it('sends the original bytes when nothing changes or the body is not JSON', async () => {
    const same = '{ "jsonrpc": "2.0", "id": 2, "result": {} }';
    expect(await run(createJsonResponseFilter({ rewrite, limit: 1 << 20 }), [same])).toBe(same);
    expect(await run(createJsonResponseFilter({ rewrite, limit: 1 << 20 }), ['not json'])).toBe('not json');
  });

  it('passes an answer over the limit through unchanged and says so', async () => {
    let gaveUp = 0;
    const text = JSON.stringify(toolsResult(1));
    const out = await run(createJsonResponseFilter({ rewrite, limit: 20, onGiveUp: () => gaveUp++ }), [
      text.slice(0, 30),
      text.slice(30),
    ]);
    expect(out).toBe(text);
    expect(gaveUp).toBe(1);
  });
});

describe('SSE response filter', () => {
  const listEvent = `event: message\nid: 42\ndata: ${JSON.stringify(toolsResult(1))}\n\n`;
  const filteredData = JSON.stringify(rewrite(toolsResult(1)));

  it('rewrites the tools/list event and keeps its other fields', async () => {
    const out = await run(createSseResponseFilter({ rewrite, limit: 1 << 20 }), [listEvent]);
    expect(out).toBe(`event: message\nid: 42\ndata: ${filteredData}\n\n`);
  });

  it('gives the same result however the stream is split, with LF or CRLF line ends', async () => {
    for (const text of [listEvent, listEvent.replaceAll('\n', '\r\n')]) {
      const whole = await run(createSseResponseFilter({ rewrite, limit: 1 << 20 }), [text]);
      for (const [a, b] of everySplit(text)) {
        const out = await run(createSseResponseFilter({ rewrite, limit: 1 << 20 }), [
          Buffer.from(a!, 'latin1'),
          Buffer.from(b!, 'latin1'),
        ]);
        expect(out).toBe(whole);
      }
    }
  });

  it('passes other events byte for byte: comments, notifications, multi-line data, other ids', async () => {
    const others =
      ': keep-alive\n\n' +
      'data: {"jsonrpc":"2.0","method":"notifications/progress","params":{}}\n\n' +
      'data: {"jsonrpc":"2.0",\ndata: "id":7,"result":{"tools":[{"name":"delete_file"}]}}\r\n\r\n' +
      'retry: 1000\n\n';
    const out = await run(createSseResponseFilter({ rewrite, limit: 1 << 20 }), [others]);
    expect(out).toBe(others);
  });

  it('joins multi-line data before parsing', async () => {
    const json = JSON.stringify(toolsResult(1));
    const split = `data: ${json.slice(0, 20)}\ndata:${json.slice(20)}\n\n`;
    // The SSE spec joins data lines with LF; JSON allows it between tokens only, so split inside whitespace-free text is invalid.
    const valid = `data: ${json.slice(0, json.indexOf('"result"'))}\ndata: ${json.slice(json.indexOf('"result"'))}\n\n`;
    expect(await run(createSseResponseFilter({ rewrite, limit: 1 << 20 }), [valid])).toBe(`data: ${filteredData}\n\n`);
    expect(await run(createSseResponseFilter({ rewrite, limit: 1 << 20 }), [split])).toBe(split);
  });

  it('emits each event as soon as it is complete (no buffering of the stream)', async () => {
    const filter = createSseResponseFilter({ rewrite, limit: 1 << 20 });
    const seen: string[] = [];
    filter.on('data', (c: Buffer) => seen.push(c.toString()));
    filter.write(Buffer.from('data: {"jsonrpc":"2.0","method":"notifications/message","params":{}}\n\n'));
    filter.write(Buffer.from('data: {"jsonrpc":"2.0","id":1,'));
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['data: {"jsonrpc":"2.0","method":"notifications/message","params":{}}\n\n']);
    filter.end();
  });

  it('stops parsing once every tools/list answer went by', async () => {
    let answered = false;
    const filter = createSseResponseFilter({
      rewrite: (v) => {
        answered = true;
        return rewrite(v);
      },
      limit: 1 << 20,
      done: () => answered,
    });
    const later = `data: ${JSON.stringify(toolsResult(1))}\n\n`;
    const out = await run(filter, [listEvent, later]);
    expect(out).toBe(`event: message\nid: 42\ndata: ${filteredData}\n\n${later}`);
  });

  it('passes an event larger than the limit through unchanged', async () => {
    let gaveUp = 0;
    const out = await run(createSseResponseFilter({ rewrite, limit: 30, onGiveUp: () => gaveUp++ }), [
      listEvent.slice(0, 40),
      listEvent.slice(40),
    ]);
    expect(out).toBe(listEvent);
    expect(gaveUp).toBe(1);
  });

  it('keeps multi-byte characters split across chunks intact', async () => {
    const text = 'data: {"jsonrpc":"2.0","method":"notifications/message","params":{"data":"héllo ✓"}}\n\n';
    for (const [a, b] of everySplit(text)) {
      expect(
        await run(createSseResponseFilter({ rewrite, limit: 1 << 20 }), [
          Buffer.from(a!, 'latin1'),
          Buffer.from(b!, 'latin1'),
        ]),
      ).toBe(text);
    }
  });
});
