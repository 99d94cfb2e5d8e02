import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProxyError } from '../../src/errors.js';
import { findDuplicateKey } from '../../src/mcp/duplicate-keys.js';
import { parseJsonRpcBody } from '../../src/mcp/jsonrpc.js';
import { parseFirstKeyWins } from '../helpers/first-key-wins-json.js';

function refusal(text: string): { code: number; status: number } | undefined {
  try {
    parseJsonRpcBody(Buffer.from(text));
    return undefined;
  } catch (err) {
    if (!(err instanceof ProxyError)) throw err;
    const body = err.body as { error: { code: number } } | Array<{ error: { code: number } }>;
    return { code: (Array.isArray(body) ? body[0]! : body).error.code, status: err.status };
  }
}

describe('findDuplicateKey', () => {
  it('finds a repeated name at any depth, compared decoded', () => {
    expect(findDuplicateKey('{"a":1,"a":2}')).toEqual({ key: 'a', depth: 0 });
    expect(findDuplicateKey('{"method":"x","\\u006dethod":"y"}')).toEqual({ key: 'method', depth: 0 });
    expect(findDuplicateKey('{"p":{"name":"a","n\\u0061me":"b"}}')).toEqual({ key: 'name', depth: 1 });
    expect(findDuplicateKey('[{"a":1},{"b":[{"c":1,"c":1}]}]')).toEqual({ key: 'c', depth: 3 });
    expect(findDuplicateKey('{"a\\"":1,"a\\\\":2,"a":3}')).toBeUndefined();
    expect(findDuplicateKey('{"a\\\\":1,"a\\u005c":2}')).toEqual({ key: 'a\\', depth: 0 });
  });

  it('does not confuse values, nested objects or sibling objects with names', () => {
    expect(findDuplicateKey('{"a":"a","b":{"a":1},"c":["a","a"],"d":[{"a":1},{"a":2}]}')).toBeUndefined();
    expect(findDuplicateKey('{"a":{},"b":[],"c":{"x":{"y":1}},"d":1}')).toBeUndefined();
    expect(findDuplicateKey('{"s":"{\\"a\\":1,\\"a\\":2}"}')).toBeUndefined();
    expect(findDuplicateKey('"a"')).toBeUndefined();
  });

  it('a JSON-RPC body with a repeated key is refused with 400 and -32600', () => {
    expect(refusal('{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/list"}')).toEqual({
      code: -32600,
      status: 400,
    });
    expect(refusal('[{"jsonrpc":"2.0","id":1,"method":"tools/list","jsonrpc":"2.0"}]')).toEqual({
      code: -32600,
      status: 400,
    });
    expect(
      refusal('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":1,"x":2}}}'),
    ).toEqual({ code: -32600, status: 400 });
    expect(refusal('{"jsonrpc":"2.0","id":1,"method":"tools/list"}')).toBeUndefined();
  });
});

/** A JSON string literal for `s`, with some characters written as \u escapes (same string to a parser). */
const spelled = (s: string) =>
  fc
    .array(fc.boolean(), { minLength: s.length, maxLength: s.length })
    .map(
      (esc) =>
        `"${[...s].map((ch, k) => (esc[k] || ch < ' ' ? `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}` : ch === '"' || ch === '\\' ? `\\${ch}` : ch)).join('')}"`,
    );

const ws = fc.constantFrom('', ' ', '\n', '\t ');

/** An object from members given as [name, value text], possibly with names repeated. */
const object = (members: fc.Arbitrary<Array<[string, string]>>) =>
  fc
    .tuple(members, ws)
    .chain(([list, space]) =>
      (list.length === 0
        ? fc.constant([] as string[])
        : fc.tuple(...list.map(([k, v]) => spelled(k).map((key) => `${space}${key}${space}:${v}`)))
      ).map((parts) => `{${parts.join(',')}}`),
    );

const method = fc.constantFrom(
  '"tools/call"',
  '"tools/list"',
  '"initialize"',
  '"notifications/initialized"',
  '"resources/read"',
);
const id = fc.constantFrom('1', '2', '"a"', '"b"', 'null');
const toolName = fc.constantFrom('"read_file"', '"delete_file"', '"echo"');
const params = object(
  fc.array(
    fc.oneof(
      fc.tuple(fc.constant('name'), toolName),
      fc.tuple(fc.constant('arguments'), fc.constantFrom('{}', '{"path":"x"}')),
      fc.tuple(fc.constantFrom('_meta', 'name '), fc.constant('{}')),
    ),
    { maxLength: 4 },
  ),
);
const member = fc.oneof(
  fc.tuple(fc.constant('jsonrpc'), fc.constantFrom('"2.0"', '"2.0"', '"1.0"')),
  fc.tuple(fc.constant('id'), id),
  fc.tuple(fc.constant('method'), method),
  fc.tuple(fc.constant('params'), params),
  fc.tuple(fc.constantFrom('Method', 'method\u0000', 'method '), method),
);
/** A well-formed request most of the time, plus members that may repeat its names, in any order. */
const message = object(
  fc
    .tuple(
      fc.tuple(fc.constant('jsonrpc'), fc.constant('"2.0"')),
      fc.tuple(fc.constant('method'), method),
      fc.option(fc.tuple(fc.constant('id'), id), { nil: undefined }),
      fc.option(fc.tuple(fc.constant('params'), params), { nil: undefined }),
      fc.array(member, { maxLength: 3 }),
    )
    .chain(([j, m, i, p, extra]) => {
      const list = [j, m, ...(i ? [i] : []), ...(p ? [p] : []), ...extra] as Array<[string, string]>;
      return fc.shuffledSubarray(list, { minLength: list.length, maxLength: list.length });
    }),
);
const body = fc.oneof(
  message,
  fc.array(message, { minLength: 1, maxLength: 3 }).map((ms) => `[${ms.join(',')}]`),
);

/** What an upstream would act on: per message its method, tool name and id. */
function reading(value: unknown): unknown {
  const view = (m: unknown) => {
    const r = m as { method?: unknown; id?: unknown; params?: { name?: unknown } };
    return { method: r.method, id: r.id, tool: r.params?.name };
  };
  return Array.isArray(value) ? value.map(view) : view(value);
}

describe('duplicate keys property', () => {
  it('any body the policy accepts reads the same (method, tool name, id) first-key-wins as under JSON.parse', () => {
    let accepted = 0;
    let refusedDuplicates = 0;
    fc.assert(
      fc.property(body, (text) => {
        const r = refusal(text);
        if (r !== undefined) {
          if (findDuplicateKey(text) !== undefined) {
            refusedDuplicates++;
            expect(r).toEqual({ code: -32600, status: 400 });
          }
          return;
        }
        accepted++;
        expect(reading(parseFirstKeyWins(text))).toEqual(reading(JSON.parse(text)));
      }),
      { numRuns: 2000 },
    );
    // The generator reaches both sides of the property.
    expect(accepted).toBeGreaterThan(50);
    expect(refusedDuplicates).toBeGreaterThan(50);
  });
});
