import type { JsonRpcId } from './jsonrpc.js';

/** JSON-RPC 2.0 §5.1 codes. */
export const PARSE_ERROR = -32700;
export const INVALID_REQUEST = -32600;
export const METHOD_NOT_FOUND = -32601;
export const INVALID_PARAMS = -32602;
/**
 * The proxy's policy refused the message for lack of scope (implementation-defined server error
 * range, JSON-RPC 2.0 §5.1; not used by the MCP SDK). `data.requiredScopes` lists what it needs.
 */
export const INSUFFICIENT_SCOPE = -32003;

export interface JsonRpcErrorObject {
  readonly jsonrpc: '2.0';
  readonly id: JsonRpcId | null;
  readonly error: { readonly code: number; readonly message: string; readonly data?: unknown };
}

/** One error to answer: the id it answers (null when unknown), JSON-RPC 2.0 §5.1 code, message, data. */
export interface JsonRpcErrorEntry {
  readonly id: JsonRpcId | null;
  readonly code: number;
  readonly message: string;
  readonly data?: unknown;
}

/**
 * Every JSON-RPC error body the proxy sends is built here (JSON-RPC 2.0 §5): one error object per
 * entry, as an array when the request body was a batch (§6), else the single object.
 */
export function jsonRpcErrorBody(
  batch: boolean,
  entries: readonly JsonRpcErrorEntry[],
): JsonRpcErrorObject | JsonRpcErrorObject[] {
  const errors = entries.map(toErrorObject);
  return batch ? errors : (errors[0] as JsonRpcErrorObject);
}

function toErrorObject(e: JsonRpcErrorEntry): JsonRpcErrorObject {
  const { code, message, data } = e;
  return { jsonrpc: '2.0', id: e.id, error: data === undefined ? { code, message } : { code, message, data } };
}
