import { ProxyError } from '../errors.js';
import { findDuplicateKey } from './duplicate-keys.js';
import { INVALID_REQUEST, jsonRpcErrorBody, PARSE_ERROR } from './jsonrpc-errors.js';

export type JsonRpcId = string | number;

/** One JSON-RPC 2.0 message as the agent sent it (JSON-RPC 2.0 §4, §5). */
export type McpMessage =
  | { readonly kind: 'request'; readonly id: JsonRpcId; readonly method: string; readonly params: unknown }
  | { readonly kind: 'notification'; readonly method: string; readonly params: unknown }
  | { readonly kind: 'response'; readonly id: JsonRpcId | null };

export interface ParsedBody {
  /** The body was an array (JSON-RPC 2.0 §6): answers are arrays too. */
  readonly batch: boolean;
  readonly messages: readonly McpMessage[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parses a POST body into JSON-RPC messages. Malformed JSON (or bytes that are not UTF-8) is a
 * parse error (-32700), a well-formed body that is not a JSON-RPC 2.0 message or batch is an
 * invalid request (-32600); both answer HTTP 400 with the JSON-RPC error object as the body. So is
 * a body whose objects repeat a key, at any depth (see findDuplicateKey): the upstream then gets
 * exactly the message the policy read, whichever duplicate its parser would keep.
 */
export function parseJsonRpcBody(body: Buffer): ParsedBody {
  let value: unknown;
  let text: string;
  try {
    // A BOM is not JSON (RFC 8259 §8.1): fail here rather than let the upstream's parser decide.
    text = utf8.decode(body);
    value = JSON.parse(text);
  } catch (err) {
    throw new ProxyError('invalid_request', 'the request body is not valid JSON', {
      detail: `JSON-RPC parse error: ${(err as Error).message}`,
      body: jsonRpcErrorBody(false, [{ id: null, code: PARSE_ERROR, message: 'Parse error' }]),
    });
  }
  const duplicate = findDuplicateKey(text);
  if (duplicate !== undefined)
    throw invalidEnvelope(
      Array.isArray(value),
      null,
      `repeats the key ${JSON.stringify(duplicate.key.slice(0, 64))} (depth ${duplicate.depth})`,
    );
  if (Array.isArray(value)) {
    if (value.length === 0) throw invalidEnvelope(true, null, 'empty batch');
    return { batch: true, messages: value.map((v, i) => toMessage(v, true, i)) };
  }
  return { batch: false, messages: [toMessage(value, false, 0)] };
}

function isId(v: unknown): v is JsonRpcId {
  return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
}

function toMessage(v: unknown, batch: boolean, index: number): McpMessage {
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw invalidEnvelope(batch, null, `message ${index} is not an object`);
  const m = v as Record<string, unknown>;
  const id = Object.hasOwn(m, 'id') ? m.id : undefined;
  const echoId = isId(id) ? id : null;
  if (m.jsonrpc !== '2.0') throw invalidEnvelope(batch, echoId, `message ${index}: jsonrpc is not "2.0"`);
  if (Object.hasOwn(m, 'method')) {
    if (typeof m.method !== 'string' || m.method === '')
      throw invalidEnvelope(batch, echoId, `message ${index}: method is not a string`);
    const params = m.params;
    if (params !== undefined && (params === null || typeof params !== 'object')) {
      throw invalidEnvelope(batch, echoId, `message ${index}: params is neither an object nor an array`);
    }
    if (id === undefined) return { kind: 'notification', method: m.method, params };
    // MCP (basic/index "Requests"): request ids are strings or integers, never null.
    if (!isId(id)) throw invalidEnvelope(batch, null, `message ${index}: id is neither a string nor a number`);
    return { kind: 'request', id, method: m.method, params };
  }
  const hasResult = Object.hasOwn(m, 'result');
  const hasError = Object.hasOwn(m, 'error');
  if (hasResult === hasError || (id !== null && !isId(id))) {
    throw invalidEnvelope(batch, echoId, `message ${index}: neither a request, a notification nor a response`);
  }
  return { kind: 'response', id: echoId };
}

function invalidEnvelope(batch: boolean, id: JsonRpcId | null, detail: string): ProxyError {
  return new ProxyError('invalid_request', 'the request body is not a JSON-RPC 2.0 message', {
    detail: `JSON-RPC invalid request: ${detail}`,
    body: jsonRpcErrorBody(batch, [{ id, code: INVALID_REQUEST, message: 'Invalid Request' }]),
  });
}
